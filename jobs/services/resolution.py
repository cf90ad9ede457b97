"""Who may run a transition, what each job enters (its status and extra parameters), and every
reason a job is refused, each stated once.

A refusal rule is a `Rule`: its code, the jobs it refuses as a `Condition`, and the refusal it
raises for one of them (a code with data; the doors put it in words). A condition is data that
reads two ways: `holds(job)` for a job in memory, `q()` for the database. So the single job
under its lock, a bulk batch and a forecast over millions (jobs.services.forecast) refuse for
exactly the same reasons, in the same order.

A choice (`Transition.choices`) is asked for by instance, by an identifier the door has parsed
(`{"alternative_code": "ONSITE"}`), or not at all (the job type's default). An entry asked for is
read once per run: a single job reads it in its own lock (`jobs.sql.lock.lock_job`), a bulk run
on its first use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import models
from django.db.models import Q

from jobs.exceptions import JobsError, JobStateConflict, NoDefaultStatus, StatusNotAllowed
from jobs.metrics import count_transition
from jobs.models import AllowedStatus, Job
from jobs.services.moves import Move, snapshot
from jobs.services.permissions import TransitionRef, ensure_permitted
from jobs.services.records import Moment
from jobs.sql.lock import Wanted, wanted_for
from jobs.transitions import Choice, JobTransition, get_transition
from jobs.visibility import Sight, sight_of

# A catalog entry as a caller names it: the instance, an identifier object the door has parsed
# ({"id": 5}, {"alternative_code": "ONSITE"}), or None for the job type's default.
CatalogRef = models.Model | Mapping[str, Any] | None


# --- conditions: which jobs, in memory and in SQL ---------------------------------------------


class Condition:
    def holds(self, job: Job) -> bool:
        raise NotImplementedError

    def q(self) -> Q:
        raise NotImplementedError


@dataclass(frozen=True)
class EveryJob(Condition):
    def holds(self, job: Job) -> bool:
        return True

    def q(self) -> Q:
        return Q(pk__isnull=False)


@dataclass(frozen=True)
class StateNotIn(Condition):
    states: tuple[str, ...]

    def holds(self, job: Job) -> bool:
        return job.life_cycle_state not in self.states

    def q(self) -> Q:
        return ~Q(life_cycle_state__in=self.states)


@dataclass(frozen=True)
class TypeHasNo(Condition):
    """The job's type has no entry in this field (a default)."""

    field: str

    def holds(self, job: Job) -> bool:
        return getattr(job.type, f"{self.field}_id") is None

    def q(self) -> Q:
        return Q(**{f"type__{self.field}__isnull": True})


@dataclass(frozen=True)
class TypeNotIn(Condition):
    type_ids: frozenset[int]

    def holds(self, job: Job) -> bool:
        return job.type_id not in self.type_ids

    def q(self) -> Q:
        return ~Q(type_id__in=self.type_ids)


@dataclass(frozen=True)
class Rule:
    code: str
    where: Condition
    refusal: Callable[[Job], JobsError]


# --- choices -----------------------------------------------------------------------------------


class Resolver:
    """One choice for each job of a run: the entry asked for, else the type's default."""

    def __init__(
        self,
        choice: Choice,
        requested: CatalogRef,
        *,
        found: tuple[Any, bool] | None = None,
        job: Job | None = None,
    ) -> None:
        self.choice = choice
        self.by_default = requested is None
        self._allowed_type_ids: frozenset[int] = frozenset()
        # An entry given whole with nothing to check it against is taken as it is; one named by
        # identifier (or whose types are still to be read) is read once: by the job's lock
        # (`found`, with whether `job`'s type allows it), or on first use.
        self._entry: Any = None if isinstance(requested, Mapping) else requested
        self.wanted: tuple[Wanted, Any] | None = None
        if found is not None:
            self._entry, allowed = found
            self._allowed_type_ids = frozenset({job.type_id} if allowed else ())
        elif requested is not None:
            self.wanted = wanted_for(choice, requested)
        self._loaded = self.wanted is None

    @property
    def _lookup(self) -> dict[str, Any]:
        wanted, value = self.wanted
        return {wanted.field: value}

    def _load(self) -> None:
        if self._loaded:
            return
        self._entry = self.choice.model.objects.filter(**self._lookup).first()
        if self._entry is not None and self.choice.state is not None:
            allowing = AllowedStatus.objects.filter(status_id=self._entry.pk)
            self._allowed_type_ids = frozenset(allowing.values_list("job_type_id", flat=True))
        self._loaded = True

    def rules(self) -> list[Rule]:
        """Every reason this choice refuses a job for, in order."""
        choice = self.choice
        if self.by_default:
            if not choice.required:
                return []
            field = choice.type_default_field

            def no_default(job: Job) -> JobsError:
                return NoDefaultStatus(type=job.type.name, field=field, choice=choice.name)

            return [Rule(NoDefaultStatus.code, TypeHasNo(field), no_default)]
        self._load()
        entry = self._entry
        if entry is None:
            not_found = choice.not_found(choice=choice.name)
            return [Rule(not_found.code, EveryJob(), lambda job: not_found)]
        if choice.state is None:
            return []
        if entry.life_cycle_state != choice.state:
            wrong_state = StatusNotAllowed(
                status=entry.name, status_state=entry.life_cycle_state, state=choice.state
            )
            return [Rule(StatusNotAllowed.code, EveryJob(), lambda job: wrong_state)]

        def not_allowed(job: Job) -> JobsError:
            return StatusNotAllowed(status=entry.name, type=job.type.name, state=choice.state)

        return [Rule(StatusNotAllowed.code, TypeNotIn(self._allowed_type_ids), not_allowed)]

    def entry_for(self, job: Job) -> Any:
        """The entry a job that passed the rules enters."""
        if self.by_default:
            return getattr(job.type, self.choice.type_default_field)
        return self._entry

    def frozen(self) -> dict[str, Any] | None:
        """The entry asked for, by id, for a run that resolves it again later; None for the
        type's default. An entry that does not exist is refused now, not once per job."""
        if self.by_default:
            return None
        self._load()
        if self._entry is None:
            raise self.choice.not_found(choice=self.choice.name)
        return {"id": self._entry.pk}


@dataclass(slots=True)
class TransitionOrder:
    """What a run was asked to do: the transition, who asks through which door, and how each
    job's choices are resolved."""

    transition: JobTransition
    resolvers: list[Resolver]
    user: Any
    channel: str
    sight: Sight  # the jobs the user sees: the only ones a run reads, counts or moves
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
    ) -> TransitionOrder:
        """The order of a bulk run, a forecast or a background run; the permission is checked
        first."""
        declared = get_transition(transition)
        ensure_permitted(user, declared)
        requested = declared.requested(status, parameters)
        resolvers = [Resolver(c, requested[c.name]) for c in declared.choices]
        return cls(declared, resolvers, user, channel, sight_of(user), run)

    @classmethod
    def for_locked(
        cls,
        declared: JobTransition,
        requested: Mapping[str, CatalogRef],
        *,
        job: Job,
        found: Mapping[str, tuple[Any, bool]],
        user: Any,
        channel: str,
    ) -> TransitionOrder:
        """The order of one job whose lock has read the entries asked for (`found`, by choice:
        the entry and whether the job's type allows it); the caller checked the permission
        before taking the lock."""
        resolvers = [
            Resolver(c, requested[c.name], found=found.get(c.name), job=job)
            for c in declared.choices
        ]
        return cls(declared, resolvers, user, channel, sight_of(user))

    def rules(self) -> list[Rule]:
        """Every reason a job may be refused for, in order: its state, then each choice's."""
        declared = self.transition

        def wrong_state(job: Job) -> JobsError:
            return JobStateConflict(
                job=job.number, state=job.life_cycle_state, transition=declared.name
            )

        state = Rule(JobStateConflict.code, StateNotIn(declared.sources), wrong_state)
        return [state, *(rule for resolver in self.resolvers for rule in resolver.rules())]

    def move(
        self, job: Job, leaving_status: dict[str, Any], at: Moment, rules: list[Rule] | None = None
    ) -> Move:
        """Check the job (the refusal of the first rule that holds) and run the model's transition
        on it in memory."""
        chosen = self.check(job, rules)
        move = Move(job, job.life_cycle_state, leaving_status, snapshot(job))
        self.transition.apply(job, by=self.user, at=at.when, **chosen)
        return move

    def check(self, job: Job, rules: list[Rule] | None = None) -> dict[str, Any]:
        """The keyword arguments the model's transition takes for this job, or the refusal of the
        first rule that holds for it. A batch passes the rules it made once."""
        for rule in self.rules() if rules is None else rules:
            if rule.where.holds(job):
                raise rule.refusal(job)
        return {r.choice.name: r.entry_for(job) for r in self.resolvers}

    def frozen_choices(self) -> dict[str, dict[str, Any]]:
        """The entries asked for, by id, as a background run keeps them."""
        frozen = {r.choice.name: r.frozen() for r in self.resolvers}
        return {name: entry for name, entry in frozen.items() if entry is not None}

    def count(self, outcome: str, amount: int = 1) -> None:
        """Prometheus's count of jobs moved (outcome: the past tense) or refused (the code)."""
        count_transition(self.transition.name, self.channel, outcome, amount)
