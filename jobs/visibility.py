"""Who sees which job: the one rule, which the database evaluates in every statement that reads
or moves jobs (never a check per job in Python, never a grant stored per job).

A user sees a job when any of these holds:
- the user is a superuser, or holds `jobs.view_all_jobs` (directly or through a group);
- the job's `owned_by_group` is one of the user's groups;
- the job is assigned to one of the user's groups (`assigned_to.unit`);
- the job is assigned to the user (`assigned_to.user`).

A user moves a job when they see it and hold the transition's permission. A job the user does
not see answers as one that does not exist.

The rule is `OWNER` and `THROUGH_ASSIGNMENT` below; `Sight.terms()` states it for one user,
which `Sight.q()` reads as a `Q` for querysets and jobs.sql.lock as SQL for its named statement.
The user's groups are read once, with the permissions (jobs.sql.tokens for a token; one query
otherwise), never per job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import F, Q
from django.db.models.lookups import In

from jobs.models import VIEW_ALL_PERMISSION, Assignment

# The attribute holding a user's group ids, set by jobs.sql.tokens.user_of_token or on first use.
GROUPS_LOADED = "loaded_group_ids"

# The rule as data: a job is seen through its owner, a group of the user's; or through its
# assignment (read as a subquery: a join inside an OR makes the database scan every job), to a
# group of the user's or to the user.
GROUP, USER = "group", "user"
OWNER = "owned_by_group"
THROUGH_ASSIGNMENT: tuple[tuple[str, str], ...] = (("unit", GROUP), ("user", USER))


class AnyOf(In):
    """`id IN (subquery)` as PostgreSQL's `id = ANY(ARRAY(subquery))`: the subquery runs once,
    and its ids can take part in a bitmap OR with other indexes."""

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY(ARRAY{rhs})", (*lhs_params, *rhs_params)


@dataclass(frozen=True, slots=True)
class Term:
    """One way of seeing a job: `field` (a foreign key of the job, or of its assignment when
    `of_assignment`) is one of `values`."""

    of_assignment: bool
    field: str
    values: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Sight:
    """The jobs one user sees: every job, or those the rule gives them through their groups and
    themselves."""

    everything: bool
    user_id: int | None = None
    group_ids: tuple[int, ...] = ()

    def terms(self) -> list[Term]:
        """The rule for this user, each way that can hold (none for a user who sees nothing)."""
        values = {GROUP: self.group_ids, USER: () if self.user_id is None else (self.user_id,)}
        terms = [Term(False, OWNER, values[GROUP])]
        terms += [Term(True, field, values[whose]) for field, whose in THROUGH_ASSIGNMENT]
        return [term for term in terms if term.values]

    def q(self, prefix: str = "") -> Q:
        """The rule as a filter on jobs, or on what leads to them through `prefix` ("job__")."""
        if self.everything:
            return Q()
        owned, assigned = Q(pk__in=[]), Q(pk__in=[])  # nothing, unless a term says otherwise
        for term in self.terms():
            if term.of_assignment:
                assigned |= Q(**{f"{term.field}_id__in": term.values})
            else:
                owned |= Q(**{f"{prefix}{term.field}_id__in": term.values})
        if not any(term.of_assignment for term in self.terms()):
            return owned
        jobs = Assignment.objects.filter(assigned).values("job_id")
        seen = owned | Q(**{f"{prefix}id__in": jobs})
        if connection.vendor == "postgresql":
            # The same rule once more, as an index path: PostgreSQL tests an IN inside an OR row
            # by row (a page: fast; a count: every row), and ANY(ARRAY(...)) through a bitmap OR
            # of indexes (a count: fast; a page: slow, row by row). Given both, it takes the
            # cheaper for each statement (benchmarks/visibility.py).
            seen &= owned | Q(AnyOf(F(f"{prefix}id"), jobs))
        return seen

    def skeleton(self) -> Sight:
        """The same shape with stand-in values: all a statement built from `terms()` depends
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
