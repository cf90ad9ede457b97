"""Who may run a transition, and what each job enters: its status and extra parameters.

A request names each choice (`Transition.choices`) by instance, by identifier object, or not at
all (the job type's default). An entry asked for is read once per run: a single job reads it in
its own lock (`jobs.sql.lock_job`), a bulk run on its first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import models

from jobs.exceptions import JobStateConflict, NoDefaultStatus, PermissionDenied, StatusNotAllowed
from jobs.identifiers import CATALOG_IDENTIFIER_FIELDS, parse_identifier
from jobs.metrics import TRANSITIONS as TRANSITIONS_COUNTED
from jobs.models import Job, JobType
from jobs.sql import Wanted
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
            noun = choice.label.lower()
            raise choice.not_found(
                f"No {noun} matches {choice.api_name}.",
                f"Name an existing {noun} by id, name or alternative_code.",
            )
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


@dataclass(slots=True)
class TransitionRequest:
    """What a run was asked to do: the transition, who asks through which door, and how each
    job's choices are resolved."""

    transition: JobTransition
    resolvers: list[Resolver]
    user: Any
    channel: str

    @classmethod
    def build(
        cls,
        transition: TransitionRef,
        *,
        status: CatalogRef,
        parameters: Mapping[str, CatalogRef],
        user: Any,
        channel: str,
    ) -> TransitionRequest:
        declared = get_transition(transition)
        ensure_permitted(user, declared)
        unknown = set(parameters) - {p.name for p in declared.parameters}
        if unknown:
            raise TypeError(f"{declared.name} takes no {', '.join(sorted(unknown))}")
        requested = {"status": status, **parameters}
        resolvers = [Resolver(c, requested.get(c.name)) for c in declared.choices]
        return cls(declared, resolvers, user, channel)

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

    def count(self, outcome: str, amount: int = 1) -> None:
        """Prometheus's count of jobs moved (outcome: the past tense) or refused (the code)."""
        TRANSITIONS_COUNTED.labels(self.transition.name, self.channel, outcome).inc(amount)
