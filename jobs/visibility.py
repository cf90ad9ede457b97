"""Who sees which job: the one rule, which the database evaluates in every statement that reads
or moves jobs (never a check per job in Python, never a grant stored per job).

A user sees a job when any of these holds:
- the user is a superuser, or holds `jobs.view_all_jobs` (directly or through a group);
- the job's `owned_by_group` is one of the user's groups;
- the job is assigned to one of the user's groups (`assigned_to.unit`);
- the job is assigned to the user (`assigned_to.user`).

A user moves a job when they see it and hold the transition's permission. A job the user does
not see answers as one that does not exist.

The rule is `SEEN_THROUGH` below; `Sight.q()` reads it as a `Q` for querysets, `Sight.where()`
as SQL for the named statements (jobs.sql.lock). The user's groups are read once, with the
permissions (jobs.sql.tokens for a token; one query otherwise), never per job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from jobs.models import VIEW_ALL_PERMISSION

# The attribute holding a user's group ids, set by jobs.sql.tokens.user_of_token or on first use.
GROUPS_LOADED = "loaded_group_ids"

# The paths from a job by which a user sees it: to one of the user's groups, or to the user.
GROUP, USER = "group", "user"
SEEN_THROUGH: tuple[tuple[str, str], ...] = (
    ("owned_by_group", GROUP),
    ("assigned_to__unit", GROUP),
    ("assigned_to__user", USER),
)


@dataclass(frozen=True, slots=True)
class Sight:
    """The jobs one user sees: every job, or those the rule gives them through their groups and
    themselves."""

    everything: bool
    user_id: int | None = None
    group_ids: tuple[int, ...] = ()

    def _terms(self) -> list[tuple[str, str]]:
        terms = []
        for path, whose in SEEN_THROUGH:
            if whose == USER and self.user_id is not None:
                terms.append((path, USER))
            elif whose == GROUP and self.group_ids:
                terms.append((path, GROUP))
        return terms

    def q(self, prefix: str = "") -> Q:
        """The rule as a filter on jobs, or on what leads to them through `prefix` ("job__")."""
        if self.everything:
            return Q()
        seen = Q(pk__in=[])  # nothing, unless a term says otherwise
        for path, whose in self._terms():
            if whose == USER:
                seen |= Q(**{f"{prefix}{path}_id": self.user_id})
            else:
                seen |= Q(**{f"{prefix}{path}_id__in": self.group_ids})
        return seen

    def where(self, column: Callable[[str], str]) -> tuple[str, list[Any]]:
        """The rule as SQL for a statement that names each path's column (`column(path)`), with
        its parameters; empty for a user who sees everything."""
        if self.everything:
            return "", []
        terms, params = [], []
        for path, whose in self._terms():
            if whose == USER:
                terms.append(f"{column(path)} = %s")
                params.append(self.user_id)
            else:
                terms.append(f"{column(path)} IN ({', '.join(['%s'] * len(self.group_ids))})")
                params.extend(self.group_ids)
        return f"({' OR '.join(terms) or '1 = 0'})", params

    def skeleton(self) -> Sight:
        """The same shape with stand-in values: all a statement built from `where()` depends
        on, so one statement serves every user of that shape."""
        user = None if self.user_id is None else 0
        return Sight(self.everything, user, (0,) * len(self.group_ids))


EVERY_JOB = Sight(everything=True)
NO_JOB = Sight(everything=False)


def sight_of(user: Any) -> Sight:
    """The jobs `user` sees (nothing for no user, an anonymous or an inactive one)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return NO_JOB
    if user.is_superuser or user.has_perm(VIEW_ALL_PERMISSION):
        return EVERY_JOB
    groups = getattr(user, GROUPS_LOADED, None)
    if groups is None:
        groups = frozenset(user.groups.values_list("pk", flat=True))
        setattr(user, GROUPS_LOADED, groups)
    return Sight(False, user.pk, tuple(sorted(groups)))


def events_seen_by(user: Any) -> Q:
    """The events a user reads: those of the jobs they see now, and the end of their own runs
    (every event, for a user who sees every job)."""
    sight = sight_of(user)
    if sight.everything:
        return Q()
    return sight.q(prefix="job__") | Q(run__requested_by_id=sight.user_id)


def runs_seen_by(user: Any) -> Q:
    """The background runs a user sees: their own; every run for a user who sees every job."""
    if sight_of(user).everything:
        return Q()
    return Q(requested_by_id=getattr(user, "pk", None))
