"""Who may run a transition, and what each job enters: its status and extra parameters.

A request names each choice (`Transition.choices`) by instance, by identifier object, or not at
all (the job type's default). An entry asked for is read once per run: a single job reads it in
its own lock (`jobs.sql.lock.lock_job`), a bulk run on its first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from django.db import models
from django.db.models import Q

from jobs.exceptions import (
    JobStateConflict,
    NoDefaultStatus,
    PermissionDenied,
    StatusNotAllowed,
)
from jobs.identifiers import CATALOG_IDENTIFIER_FIELDS, parse_identifier
from jobs.metrics import TRANSITIONS as TRANSITIONS_COUNTED
from jobs.models import Job, JobType
from jobs.sql.lock import Wanted
from jobs.transitions import Choice, JobTransition, get_transition

# A catalog entry as a caller names it: the instance, a CRM.COM identifier object ({"id": …},
# {"alternative_code": …}), or None for the job type's default.
CatalogRef = models.Model | Mapping[str, Any] | None
TransitionRef = JobTransition | str


def ensure_permitted(user: Any, transition: TransitionRef) -> None:
    """Refuse a user who may not run the transition: django-fsm does not check `permission=` on
    a call, so every door asks here."""
    declared = get_transition(transition)
    if user is None or not user.is_active or not user.has_perm(declared.permission):
        raise PermissionDenied(
            f"You may not {declared.action} jobs.",
            f"Ask an administrator for the permission {declared.permission}.",
        )


def ensure_may_view(user: Any) -> None:
    """Refuse a user who may not look at jobs (and so at runs, events and look-ups)."""
    if user is None or not user.has_perm("jobs.view_job"):
        raise PermissionDenied(
            "You may not view jobs.", "Ask an administrator for the permission jobs.view_job."
        )


class Resolver:
    """Decides one choice for each job of a run: the entry asked for, else the type's default."""

    def __init__(self, choice: Choice, requested: CatalogRef) -> None:
        self.choice = choice
        self._lookup: dict[str, Any] | None = None
        self._entry: Any = None
        self._allowed_type_ids: set[int] = set()
        self._given = isinstance(requested, choice.model)
        if self._given and choice.state is None:
            self._entry = requested  # nothing to check it against: taken as it is
        elif self._given:
            self._lookup = {"id": requested.pk}  # which types allow it is still to be read
        elif requested is not None:
            self._lookup = parse_identifier(
                requested, fields=CATALOG_IDENTIFIER_FIELDS, parameter=choice.api_name
            )
        self._loaded = self._lookup is None

    @property
    def wanted(self) -> tuple[Wanted, Any] | None:
        """What a single job's lock should read for this choice, with the value to look for."""
        if self._loaded:
            return None
        ((field, value),) = self._lookup.items()
        return Wanted(self.choice.model, field, self.choice.state is not None), value

    def take(self, job: Job, entry: Any, allowed: bool) -> None:
        """The entry as the job's lock read it, and whether the job's type allows it."""
        self._entry = entry
        self._allowed_type_ids = {job.type_id} if allowed else set()
        self._loaded = True

    def _load(self) -> None:
        self._entry = self.choice.model.objects.filter(**self._lookup).first()
        if self._entry is not None and self.choice.state is not None:
            allowing = JobType.allowed_statuses.through.objects.filter(jobstatus_id=self._entry.pk)
            self._allowed_type_ids = set(allowing.values_list("jobtype_id", flat=True))
        self._loaded = True

    def entry_for(self, job: Job) -> Any:
        choice = self.choice
        job_type = job.type
        if self._lookup is None and not self._given:
            default = getattr(job_type, choice.type_default_field)
            if default is None and choice.required:
                label = JobType._meta.get_field(choice.type_default_field).verbose_name
                raise NoDefaultStatus(
                    f"Job type {job_type.name} has no {label}.",
                    f"Name a status in {choice.api_name}, or set the type's {label}.",
                )
            return default
        if not self._loaded:
            self._load()
        entry = self._entry
        if entry is None:
            raise self._not_found()
        if choice.state is None:
            return entry
        if entry.life_cycle_state != choice.state:
            raise StatusNotAllowed(
                f"Status {entry.name} is {entry.life_cycle_state}, not {choice.state}.",
                f"Choose a status whose life cycle state is {choice.state}.",
            )
        if job_type.pk not in self._allowed_type_ids:
            raise StatusNotAllowed(
                f"Status {entry.name} is not allowed for job type {job_type.name}.",
                f"Choose a {choice.state} status that the job's type allows.",
            )
        return entry

    def refused_where(self) -> RefusedWhere | None:
        """The jobs `entry_for` would refuse, as one condition, so that a selection of any size
        is counted in SQL (jobs.services.forecast): the same decisions, in the same order."""
        choice = self.choice
        if self._lookup is None and not self._given:
            if not choice.required:
                return None
            no_default = Q(**{f"type__{choice.type_default_field}__isnull": True})
            return RefusedWhere(NoDefaultStatus.code, no_default)
        if not self._loaded:
            self._load()
        if self._entry is None:
            return RefusedWhere(choice.not_found.code, EVERY_JOB)
        if choice.state is None:
            return None
        if self._entry.life_cycle_state != choice.state or not self._allowed_type_ids:
            return RefusedWhere(StatusNotAllowed.code, EVERY_JOB)
        return RefusedWhere(StatusNotAllowed.code, ~Q(type_id__in=self._allowed_type_ids))

    def frozen(self) -> dict[str, Any] | None:
        """The entry asked for, by id, for a run that resolves it again later; None for the
        type's default. An entry that does not exist is refused now, not once per job."""
        if self._lookup is None and not self._given:
            return None
        if not self._loaded:
            self._load()
        if self._entry is None:
            raise self._not_found()
        return {"id": self._entry.pk}

    def _not_found(self) -> Exception:
        noun, name = self.choice.label.lower(), self.choice.api_name
        return self.choice.not_found(
            f"No {noun} matches {name}.",
            f"Name an existing {noun} by id, name or alternative_code.",
        )


# A condition every job meets.
EVERY_JOB = Q(pk__isnull=False)


class RefusedWhere(NamedTuple):
    """The jobs a choice refuses, as a condition on Job, and the refusal's code."""

    code: str
    jobs: Q


@dataclass(slots=True)
class TransitionRequest:
    """What a run was asked to do: the transition, who asks through which door, and how each
    job's choices are resolved."""

    transition: JobTransition
    resolvers: list[Resolver]
    user: Any
    channel: str
    run: int | None = None  # the background run this is part of (jobs.services.runs)

    @classmethod
    def build(
        cls,
        transition: TransitionRef,
        *,
        status: CatalogRef,
        parameters: Mapping[str, CatalogRef],
        user: Any,
        channel: str,
        run: int | None = None,
    ) -> TransitionRequest:
        declared = get_transition(transition)
        ensure_permitted(user, declared)
        unknown = set(parameters) - {p.name for p in declared.parameters}
        if unknown:
            raise TypeError(f"{declared.name} takes no {', '.join(sorted(unknown))}")
        requested = {"status": status, **parameters}
        resolvers = [Resolver(c, requested.get(c.name)) for c in declared.choices]
        return cls(declared, resolvers, user, channel, run)

    def check(self, job: Job) -> dict[str, Any]:
        """The keyword arguments the model's transition takes for this job, or the refusal."""
        declared = self.transition
        if not declared.allows(job):
            raise JobStateConflict(
                f"Job {job.number} is {job.life_cycle_state}; only {declared.sources_text} "
                f"jobs can be {declared.past}.",
                "Nothing was changed. Reload the job to see its current state.",
            )
        return {r.choice.name: r.entry_for(job) for r in self.resolvers}

    def refusals(self) -> list[RefusedWhere]:
        """Every reason `check` may refuse a job for, in its order, as conditions on Job."""
        declared = self.transition
        wrong_state = RefusedWhere(JobStateConflict.code, ~Q(life_cycle_state__in=declared.sources))
        by_choice = [resolver.refused_where() for resolver in self.resolvers]
        return [wrong_state, *(refused for refused in by_choice if refused is not None)]

    def frozen_choices(self) -> dict[str, dict[str, Any]]:
        """The entries asked for, by id, as a background run keeps them."""
        frozen = {r.choice.name: r.frozen() for r in self.resolvers}
        return {name: entry for name, entry in frozen.items() if entry is not None}

    def count(self, outcome: str, amount: int = 1) -> None:
        """Prometheus's count of jobs moved (outcome: the past tense) or refused (the code)."""
        TRANSITIONS_COUNTED.labels(self.transition.name, self.channel, outcome).inc(amount)
