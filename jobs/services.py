"""Moving jobs through their life: the one place that does it, for the API, the admin and the
command, for every transition declared in `jobs.transitions`.

The transition itself (`Job.start_progress`, `Job.complete`, `Job.cancel`) is pure and lives on
the model. This module owns what the model cannot: the permission check (django-fsm does not check
`permission=` on a call), locking, resolving the status and the extra parameters, the
compare-and-set write, the transition log, and batching.

Query budget, for every transition: one job is 5 queries on SQLite (permissions 1, lock 1,
update 1, log 1, event 1) and 3 on PostgreSQL, where the UPDATE and the INSERTs are one statement;
the lock also reads the status and cancellation reason asked for, and what the caller will render.
A bulk run is, per batch, the lock and the writes (4 on SQLite, 2 on PostgreSQL), plus the next
ids when it pages through a queryset, and at most 5 per run (permissions 1, status 2, reason 1,
the job types 1).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, lru_cache
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Case, Exists, F, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import JSONObject
from django.db.models.sql import UpdateQuery
from django.utils import timezone

from jobs.compiled import CompiledQuery, NotCompilable, preparing_cursor
from jobs.exceptions import (
    JobNotFound,
    JobsError,
    JobStateConflict,
    NoDefaultStatus,
    PermissionDenied,
    StatusNotAllowed,
    StatusNotFound,
)
from jobs.identifiers import (
    CATALOG_IDENTIFIER_FIELDS,
    JOB_IDENTIFIER_FIELDS,
    STATUS_IDENTIFIER_FIELDS,
    parse_identifier,
)
from jobs.metrics import TRANSITIONS as TRANSITIONS_COUNTED
from jobs.models import Event, Job, JobStatus, JobTransitionLog, JobType, new_event_id
from jobs.tasks import announce
from jobs.transitions import START_PROGRESS, ExtraParameter, JobTransition, get_transition

# A job: the instance, its primary key, or a CRM.COM identifier object ({"id": …} or {"number": …}).
JobRef = Job | int | Mapping[str, Any]
# A status (or an extra parameter's entry): the instance, a CRM.COM identifier object, or None
# for the type's default.
CatalogRef = models.Model | Mapping[str, Any] | None
StatusRef = CatalogRef
TransitionRef = JobTransition | str

# The job columns a transition reads; nothing else is loaded.
_JOB_FIELDS = ("id", "number", "life_cycle_state", "status_id", "type_id", "expiration_date")
# The columns a transition may change, and the service writes when it does.
_WRITABLE = tuple(
    f.attname
    for f in Job._meta.concrete_fields
    if f.attname not in {"id", "number", "life_cycle_state", "type_id"}
)
# The log columns every transition writes, in the order _run_in_memory builds its rows; each extra
# parameter adds its own column after them.
_LOG_FIELDS = (
    "job",
    "transition",
    "from_state",
    "to_state",
    "from_status",
    "to_status",
    "user",
    "channel",
    "created_at",
)
_MISSING = object()
logger = logging.getLogger(__name__)


def _count(request: _Request, outcome: str, amount: int = 1) -> None:
    TRANSITIONS_COUNTED.labels(request.transition.name, request.channel, outcome).inc(amount)


def ensure_permitted(user: Any, transition: TransitionRef) -> None:
    declared = get_transition(transition)
    if user is None or not user.is_active or not user.has_perm(declared.permission):
        raise PermissionDenied(
            f"You may not {declared.action} jobs.",
            f"Ask an administrator for the permission {declared.permission}.",
        )


def _as_json(model: type[models.Model], *fields: str) -> JSONObject:
    """A catalog row (or some of its fields) as one JSON column, so a subquery can bring it
    along with the job."""
    names = fields or [f.attname for f in model._meta.concrete_fields]
    return JSONObject(**{name: name for name in names})


def _from_json(model: type[models.Model], values: dict[str, Any] | None) -> Any:
    if values is None:
        return None
    entry = model(**values)
    entry._state.adding, entry._state.db = False, "default"  # a row read from the database
    return entry


class StatusResolver:
    """Decides the status each job enters, querying once per run rather than once per job.

    With no requested status, a job enters its type's default for the transition (loaded with the
    job's type). A requested status is read on first use, together with the types that allow it;
    a single job reads both in its own lock query (see `annotate`).
    """

    def __init__(self, transition: JobTransition, requested: StatusRef) -> None:
        self._transition = transition
        self._requested = requested
        self._loaded = requested is None
        self._status: JobStatus | None = None
        self._allowed_type_ids: set[int] = set()

    def _lookup(self) -> dict[str, Any]:
        if isinstance(self._requested, JobStatus):
            return {"pk": self._requested.pk}
        return parse_identifier(
            self._requested, fields=STATUS_IDENTIFIER_FIELDS, parameter="status_identifier"
        )

    @property
    def reads_with_job(self) -> bool:
        """Whether `annotate` adds to the lock query (a status asked for and not yet read)."""
        return not self._loaded

    def annotate(self, jobs: QuerySet[Job]) -> QuerySet[Job]:
        """Read the requested status, and whether each job's type allows it, with the jobs."""
        if self._loaded:
            return jobs
        statuses = JobStatus.objects.filter(**self._lookup()).order_by()
        allowing = JobType.allowed_statuses.through.objects.filter(
            jobtype_id=OuterRef("type_id"), jobstatus_id=Subquery(statuses.values("pk")[:1])
        )
        return jobs.annotate(
            _requested_status=Subquery(
                statuses.values_list(_as_json(JobStatus))[:1], output_field=models.JSONField()
            ),
            _requested_status_allowed=Exists(allowing),
        )

    def _load(self, job: Job) -> None:
        if hasattr(job, "_requested_status"):
            self._status = _from_json(JobStatus, job._requested_status)
            self._allowed_type_ids = {job.type_id} if job._requested_status_allowed else set()
        else:
            self._status = JobStatus.objects.filter(**self._lookup()).first()
            if self._status is not None:
                self._allowed_type_ids = set(
                    JobType.allowed_statuses.through.objects.filter(
                        jobstatus_id=self._status.pk
                    ).values_list("jobtype_id", flat=True)
                )
        self._loaded = True

    def status_for(self, job: Job) -> JobStatus:
        declared = self._transition
        target = declared.target
        job_type = job.type
        if self._requested is None:
            default = getattr(job_type, declared.default_status_field)
            if default is None:
                label = JobType._meta.get_field(declared.default_status_field).verbose_name
                raise NoDefaultStatus(
                    f"Job type {job_type.name} has no {label}.",
                    f"Name a status in status_identifier, or set the type's {label}.",
                )
            return default
        if not self._loaded:
            self._load(job)
        status = self._status
        if status is None:
            raise StatusNotFound(
                "No job status matches status_identifier.",
                "Name an existing status by id, name or alternative_code.",
            )
        if status.life_cycle_state != target:
            raise StatusNotAllowed(
                f"Status {status.name} is {status.life_cycle_state}, not {target}.",
                f"Choose a status whose life cycle state is {target}.",
            )
        if job_type.pk not in self._allowed_type_ids:
            raise StatusNotAllowed(
                f"Status {status.name} is not allowed for job type {job_type.name}.",
                f"Choose a {target} status that the job's type allows.",
            )
        return status


class ParameterResolver:
    """Decides an extra parameter's entry (cancel's reason) for each job: the one asked for, else
    the type's default, else none. The asked-for entry is read once per run; a single job reads
    it in its lock query (see `annotate`)."""

    def __init__(self, parameter: ExtraParameter, requested: CatalogRef) -> None:
        self.parameter = parameter
        self._lookup: dict[str, Any] | None = None
        self._entry: models.Model | None = None
        self._loaded = requested is None
        if isinstance(requested, parameter.model):
            self._entry, self._loaded = requested, True
        elif requested is not None:
            self._lookup = parse_identifier(
                requested, fields=CATALOG_IDENTIFIER_FIELDS, parameter=parameter.api_name
            )

    @property
    def _annotation(self) -> str:
        return f"_requested_{self.parameter.name}"

    @property
    def reads_with_job(self) -> bool:
        return not self._loaded

    def annotate(self, jobs: QuerySet[Job]) -> QuerySet[Job]:
        """Read the requested entry in the same query as the job, as one JSON column."""
        if self._loaded:
            return jobs
        model = self.parameter.model
        return jobs.annotate(
            **{
                self._annotation: Subquery(
                    model.objects.filter(**self._lookup)
                    .order_by()
                    .values_list(_as_json(model))[:1],
                    output_field=models.JSONField(),
                )
            }
        )

    def entry_for(self, job: Job) -> models.Model | None:
        if self._lookup is None and self._entry is None:
            return getattr(job.type, self.parameter.type_default_field)
        if not self._loaded:
            if hasattr(job, self._annotation):
                self._entry = _from_json(self.parameter.model, getattr(job, self._annotation))
            else:
                self._entry = self.parameter.model.objects.filter(**self._lookup).first()
            self._loaded = True
        if self._entry is None:
            noun = self.parameter.label.lower()
            raise self.parameter.not_found(
                f"No {noun} matches {self.parameter.api_name}.",
                f"Name an existing {noun} by id, name or alternative_code.",
            )
        return self._entry


@dataclass(slots=True)
class _Request:
    """What a run was asked to do: the transition, and how to resolve each job's status and extra
    parameters."""

    transition: JobTransition
    status: StatusResolver
    parameters: list[ParameterResolver]
    user: Any
    channel: str

    @classmethod
    def build(
        cls,
        transition: TransitionRef,
        *,
        status: StatusRef,
        parameters: Mapping[str, CatalogRef],
        user: Any,
        channel: str,
    ) -> _Request:
        declared = get_transition(transition)
        ensure_permitted(user, declared)
        declared_names = {p.name for p in declared.parameters}
        unknown = set(parameters) - declared_names
        if unknown:
            raise TypeError(f"{declared.name} takes no {', '.join(sorted(unknown))}")
        return cls(
            declared,
            StatusResolver(declared, status),
            [ParameterResolver(p, parameters.get(p.name)) for p in declared.parameters],
            user,
            channel,
        )

    def check(self, job: Job) -> dict[str, Any]:
        """The keyword arguments the transition will take for this job, or the refusal."""
        declared = self.transition
        if not declared.allows(job):
            raise JobStateConflict(
                f"Job {job.number} is {job.life_cycle_state}; only {declared.sources_text} "
                f"jobs can be {declared.past}.",
                "Nothing was changed. Reload the job to see its current state.",
            )
        chosen: dict[str, Any] = {"status": self.status.status_for(job)}
        for resolver in self.parameters:
            chosen[resolver.parameter.name] = resolver.entry_for(job)
        return chosen

    def run_in_memory(self, job: Job, chosen: dict[str, Any], at: _Moment) -> tuple[tuple, tuple]:
        """Run the model's transition; return the log row and the event row it makes (values in
        column order; `at` already adapted for the database, see _persist)."""
        # The status it leaves, as its event names it: {"id", "name", "alternative_code"}.
        from_state, from_status = job.life_cycle_state, job._from_status
        self.transition.run(job, by=self.user, at=at.when, **chosen)
        log_row = (
            job.pk,
            self.transition.name,
            from_state,
            job.life_cycle_state,
            from_status["id"],
            job.status_id,
            self.user.pk,
            self.channel,
            at.db_value,
            *(getattr(job, f"{p.parameter.name}_id") for p in self.parameters),
        )
        data = {
            "job": {
                "id": job.pk,
                "number": job.number,
                "type": {"id": job.type_id, "alternative_code": job.type.alternative_code},
            },
            "from_state": from_state,
            "to_state": job.life_cycle_state,
            "from_status": from_status,
            "to_status": _reference(job.status),
            "user": {"id": self.user.pk, "username": self.user.get_username()},
            "channel": self.channel,
            **{
                p.parameter.name: _reference(getattr(job, p.parameter.name))
                for p in self.parameters
            },
        }
        event_row = (new_event_id(), self.transition.event, at.db_value, json.dumps(data))
        return log_row, event_row


def _reference(entry: models.Model | None) -> dict[str, Any] | None:
    """A status or reason as an event names it."""
    if entry is None:
        return None
    return {"id": entry.pk, "name": entry.name, "alternative_code": entry.alternative_code}


def _locked(jobs: QuerySet[Job]) -> QuerySet[Job]:
    # of=("self",): only the job rows need locking, and PostgreSQL refuses FOR UPDATE on the
    # nullable side of an outer join (a single job joins its type's defaults).
    # SQLite ignores it and relies on BEGIN IMMEDIATE (see settings) and the compare-and-set in
    # _persist.
    # The status a job leaves, for its event, comes as a subquery rather than a join: when the
    # row was changed while we waited for its lock, PostgreSQL re-reads it, and a join on the old
    # status would then drop the row (a job "not found" instead of a conflict).
    return (
        jobs.select_for_update(of=("self",))
        .only(*_JOB_FIELDS)
        .annotate(_from_status=_leaving_status())
        .order_by("pk")  # one lock order for everyone, so two bulk runs cannot deadlock
    )


@cache
def _leaving_status() -> Subquery:
    """The job's current status as its event names it. Built once: annotate() copies it, and
    building it took a noticeable part of a single transition's time."""
    # Unordered: one row by primary key needs no sort (the catalog's default ordering by name).
    leaving = (
        JobStatus.objects.filter(pk=OuterRef("status_id"))
        .order_by()
        .values_list(_as_json(JobStatus, "id", "name", "alternative_code"))
    )
    return Subquery(leaving[:1], output_field=models.JSONField())


class _TypeCache:
    """Job types with their defaults, loaded once per bulk run rather than joined onto every job
    row: a run touches a handful of types and thousands of jobs."""

    def __init__(self, relations: Iterable[str]) -> None:
        self._relations = relations
        self._types: dict[int, JobType] = {}

    def attach(self, jobs: list[Job]) -> None:
        missing = {job.type_id for job in jobs} - self._types.keys()
        if missing:
            self._types.update(JobType.objects.select_related(*self._relations).in_bulk(missing))
        for job in jobs:
            job.type = self._types[job.type_id]


class _LostRace(Exception):
    """A job changed state between our read and our write: the batch must be redone."""


@dataclass(frozen=True, slots=True)
class _Moment:
    """The time of a batch, and that time as the database driver takes it."""

    when: datetime
    db_value: Any

    @classmethod
    def now(cls) -> _Moment:
        when = timezone.now()
        return cls(when, connection.ops.adapt_datetimefield_value(when))


@dataclass(frozen=True, slots=True)
class _Rows:
    """Rows to insert into one table: values for `fields` (model field names), in that order, and
    columns every row computes in SQL (`computed`: column, PostgreSQL's SQL, SQLite's SQL)."""

    model: type[models.Model]
    fields: tuple[str, ...]
    rows: list[tuple]
    computed: tuple[tuple[str, str, str], ...] = ()

    def insert_sql(self, *, as_json: bool) -> str:
        """The INSERT: one row of placeholders (for execute and executemany), or, `as_json`
        (PostgreSQL), every row in one JSON parameter (see `as_json`)."""
        return _insert_sql(self.model, self.fields, self.computed, connection.vendor, as_json)

    def as_json(self) -> str:
        """Every row as one JSON array of objects: json.dumps does in C what psycopg did in
        Python for each value of each row (quoting text, above all the events' JSON)."""
        columns = [self.model._meta.get_field(name).column for name in self.fields]
        # Times as str(): ISO 8601 with every microsecond, which PostgreSQL reads back exactly.
        return json.dumps([dict(zip(columns, row, strict=True)) for row in self.rows], default=str)


@cache  # one per table, shape and database: one job's write builds it on every request otherwise
def _insert_sql(
    model: type[models.Model],
    names: tuple[str, ...],
    computed: tuple[tuple[str, str, str], ...],
    vendor: str,
    as_json: bool,
) -> str:
    meta, quote = model._meta, connection.ops.quote_name
    fields = [meta.get_field(name) for name in names]
    columns = [f.column for f in fields] + [column for column, _, _ in computed]
    values = [
        postgresql if vendor == "postgresql" else sqlite for _, postgresql, sqlite in computed
    ]
    into = f"INSERT INTO {quote(meta.db_table)} ({', '.join(map(quote, columns))})"
    if not as_json:
        return f"{into} VALUES ({', '.join(['%s'] * len(fields) + values)})"
    # A JSON column arrives as its text, read as JSON here.
    is_json = [f.get_internal_type() == "JSONField" for f in fields]
    types = ["text" if j else f.db_type(connection) for f, j in zip(fields, is_json, strict=True)]
    record = ", ".join(f"{quote(f.column)} {t}" for f, t in zip(fields, types, strict=True))
    read = [
        f"r.{quote(f.column)}" + ("::jsonb" if j else "")
        for f, j in zip(fields, is_json, strict=True)
    ]
    return (
        f"{into} SELECT {', '.join(read + values)} "
        f"FROM jsonb_to_recordset(%s::jsonb) AS r({record})"
    )


# Each event carries the id of the transaction writing it, which orders the feed (jobs.events).
_EVENT_COMPUTED = (
    ("txid", "pg_current_xact_id()::text::bigint", "0"),
    ("fanned_out", "FALSE", "FALSE"),
)


def _write(update: tuple[str, list[Any]], inserts: list[_Rows]) -> int:
    """Run the compare-and-set UPDATE, then the INSERTs; return how many jobs the UPDATE changed.

    On PostgreSQL that is one statement, the INSERTs as data-modifying WITH queries taking their
    rows as one JSON parameter each: each round trip cost about as much as the statement it
    carried, and executemany ran one statement per row. Rows that turn out not to be wanted (the
    UPDATE fell short) go with the transaction the caller rolls back.
    """
    sql, params = update
    if connection.vendor == "postgresql":
        steps = [f"changed AS ({sql} RETURNING 1)"]
        for index, rows in enumerate(inserts):
            steps.append(f"written_{index} AS ({rows.insert_sql(as_json=True)})")
            params = [*params, rows.as_json()]
        # Prepared: one job's statement has a handful of shapes and runs on every request, and a
        # run's full batches share theirs. Bound on the server, a batch's JSON is not copied
        # into the statement's text either (which kept memory growing with the run).
        with preparing_cursor() as cursor:
            cursor.execute(f"WITH {', '.join(steps)} SELECT count(*) FROM changed", params)
            return cursor.fetchone()[0]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        updated = cursor.rowcount
        for rows in inserts:
            cursor.executemany(rows.insert_sql(as_json=False), rows.rows)
        return updated


def _snapshot(job: Job) -> tuple:
    values = job.__dict__
    return tuple(values.get(name, _MISSING) for name in _WRITABLE)


def _column_value(name: str, changed: list[tuple[Job, Any]], unchanged_types: set[int]) -> Any:
    """One column's new values as one SQL expression. Most values depend only on the job's type
    (one time per batch), so they are a CASE over the handful of types, or a constant; only
    values that differ within a type fall back to one branch per job."""
    model_field = Job._meta.get_field(name)
    output = models.BigIntegerField() if model_field.is_relation else model_field
    if not unchanged_types and len({value for _, value in changed}) == 1:
        return Value(changed[0][1], output_field=output)
    per_type: dict[int, Any] = {}
    uniform = True
    for job, value in changed:
        if job.type_id in unchanged_types or per_type.setdefault(job.type_id, value) != value:
            uniform = False
            break
    branches = (
        [When(type_id=t, then=Value(v, output_field=output)) for t, v in per_type.items()]
        if uniform
        else [When(pk=job.pk, then=Value(v, output_field=output)) for job, v in changed]
    )
    return Case(*branches, default=F(name), output_field=output)


def _changes(before: tuple, job: Job) -> dict[str, Any]:
    """The columns the transition changed on `job`, by name, with their new values."""
    return {
        name: new
        for name, old, new in zip(_WRITABLE, before, _snapshot(job), strict=True)
        if new is not _MISSING and new != old
    }


def _update_one(request: _Request, job: Job, from_state: str, before: tuple) -> tuple[str, list]:
    """The compare-and-set UPDATE of one job, written directly: the ORM took longer to build and
    compile it than the database took to run it."""
    changes = {"life_cycle_state": request.transition.target, **_changes(before, job)}
    fields = [Job._meta.get_field(name) for name in changes]
    values = [f.get_db_prep_save(changes[f.attname], connection) for f in fields]
    return _update_one_sql(tuple(changes), connection.vendor), [*values, job.pk, from_state]


@cache  # one per set of columns a transition changes (a handful) and database (its quoting)
def _update_one_sql(names: tuple[str, ...], vendor: str) -> str:
    meta, quote = Job._meta, connection.ops.quote_name
    assignments = ", ".join(f"{quote(meta.get_field(name).column)} = %s" for name in names)
    state, pk = meta.get_field("life_cycle_state"), meta.pk
    return (
        f"UPDATE {quote(meta.db_table)} SET {assignments} "
        f"WHERE {quote(pk.column)} = %s AND {quote(state.column)} = %s"
    )


def _update_many(request: _Request, done: list[tuple[Job, str, tuple]]) -> tuple[str, list]:
    """The compare-and-set UPDATE of a batch: one statement, whatever the count."""
    changed: dict[str, list[tuple[Job, Any]]] = defaultdict(list)
    unchanged_types: dict[str, set[int]] = defaultdict(set)
    by_state: dict[str, list[int]] = defaultdict(list)
    for job, from_state, before in done:
        by_state[from_state].append(job.pk)
        changes = _changes(before, job)
        for name in _WRITABLE:
            if name in changes:
                changed[name].append((job, changes[name]))
            else:
                unchanged_types[name].add(job.type_id)
    changes = {"life_cycle_state": Value(request.transition.target)}
    for name, values in changed.items():
        changes[name] = _column_value(name, values, unchanged_types[name])
    still_as_read = Q()
    for state, pks in by_state.items():
        still_as_read |= Q(pk__in=pks, life_cycle_state=state)
    query = Job.objects.filter(still_as_read).query.chain(UpdateQuery)
    query.add_update_values(changes)
    sql, params = query.get_compiler(connection.alias).as_sql()
    return sql, list(params)


def _persist(
    request: _Request,
    done: list[tuple[Job, str, tuple]],
    log_rows: list[tuple],
    event_rows: list[tuple],
) -> None:
    """Write the jobs a transition changed, their log rows and their events: one UPDATE and two
    INSERTs whatever the count, one statement on PostgreSQL.

    The UPDATE is a compare-and-set: each job is written only if it is still in the state it was
    read in, and a short count means someone else got there first, so the caller's transaction
    rolls back. `done` holds each job with the state and column values it was read with.
    """
    update = _update_one(request, *done[0]) if len(done) == 1 else _update_many(request, done)
    log_fields = (*_LOG_FIELDS, *(p.parameter.name for p in request.parameters))
    inserts = [
        _Rows(JobTransitionLog, log_fields, log_rows),
        _Rows(Event, ("public_id", "type", "timestamp", "data"), event_rows, _EVENT_COMPUTED),
    ]
    if _write(update, inserts) != len(done):
        raise _LostRace
    # One message per batch, once it has committed: never an event that did not happen.
    transaction.on_commit(announce)


def _job_lookup(job: JobRef) -> dict[str, Any]:
    if isinstance(job, Job):
        return {"pk": job.pk}
    if isinstance(job, int):
        return {"pk": job}
    return parse_identifier(job, fields=JOB_IDENTIFIER_FIELDS, parameter="job_identifier")


def job_transition(
    *,
    transition: TransitionRef,
    job: JobRef,
    status: StatusRef = None,
    user: Any,
    channel: str,
    load: Iterable[str] = (),
    **parameters: CatalogRef,
) -> Job:
    """Run one transition on one job; raise a JobsError (with the contract's code) if it cannot.

    `parameters` are the transition's extra parameters (cancel: `cancellation_reason`), each an
    instance, an identifier object, or None for the type's default. Returns the job with its new
    state, status and every column the transition set, plus what `load` names: ORM paths such as
    "description" or "assigned_to__user__username", read by the same query that locks the job, so
    a caller can render the job without reading it again.
    """
    declared = get_transition(transition)
    lookup = _job_lookup(job)
    request = _Request.build(
        declared, status=status, parameters=parameters, user=user, channel=channel
    )
    try:
        locked = _transition_one(request, lookup, load)
    except JobsError as refusal:
        _count(request, refusal.code)
        raise
    _count(request, declared.past)
    return locked


def _with_loaded(
    jobs: QuerySet[Job], declared: JobTransition, load: Iterable[str]
) -> QuerySet[Job]:
    """One row: join its type with the type's defaults, and whatever the caller will read."""
    # The type is loaded whole (the transition reads its defaults and expiration rule), so the
    # caller's type columns are already there; restricting them would defer what the model needs.
    # What the transition assigns is not read either: each join left out is one fewer for
    # PostgreSQL to plan, which costs more than running the query.
    skipped = {"type", *declared.assigns}
    own = [path for path in load if path.split("__", 1)[0] not in skipped]
    relations = sorted({path.rsplit("__", 1)[0] for path in own if "__" in path})
    return jobs.select_related(
        *(f"type__{name}" for name in declared.type_defaults), *relations
    ).only(*_JOB_FIELDS, "type", *own)


def _lock_query(declared: JobTransition, lookup: dict[str, Any], load: Iterable[str]) -> QuerySet:
    # The lookup is unique: no ORDER BY … LIMIT 1, which multiplies the plans PostgreSQL weighs
    # for a query with joins (planning took longer than running it).
    return _with_loaded(_locked(Job.objects.filter(**lookup)), declared, load).order_by()


# Stand-ins for a job's identifier while its lock query is compiled (see _compiled_lock).
_IDENTIFIER_MARKERS: dict[type, Any] = {int: -1_234_567, str: "\x00job-identifier"}


@lru_cache(maxsize=256)  # fields_set selections are the client's to choose: keep a bounded few
def _compiled_lock(
    transition: str, field: str, kind: type, load: tuple[str, ...]
) -> CompiledQuery | None:
    """The lock query of one shape (transition, identifier field, what the caller will read),
    compiled once. None if it cannot be (see CompiledQuery)."""
    marker = _IDENTIFIER_MARKERS[kind]
    jobs = _lock_query(get_transition(transition), {field: marker}, load)
    try:
        return CompiledQuery(jobs, [marker])
    except NotCompilable:
        return None


def _lock_one(request: _Request, lookup: dict[str, Any], load: Iterable[str]) -> Job | None:
    """Lock the job, read with what the transition and the caller need (see _with_loaded)."""
    resolvers = (request.status, *request.parameters)
    ((field, value),) = lookup.items()
    if type(value) in _IDENTIFIER_MARKERS and not any(r.reads_with_job for r in resolvers):
        compiled = _compiled_lock(request.transition.name, field, type(value), tuple(load))
        if compiled is not None:
            return next(iter(compiled.objects(value)), None)
    # A status or extra parameter asked for by name is read in this query too: built each time.
    jobs = _lock_query(request.transition, lookup, load)
    for resolver in resolvers:
        jobs = resolver.annotate(jobs)
    return next(iter(jobs), None)


def _transition_one(request: _Request, lookup: dict[str, Any], load: Iterable[str]) -> Job:
    at = _Moment.now()
    with transaction.atomic():
        locked = _lock_one(request, lookup, load)
        if locked is None:
            raise JobNotFound(
                "No job matches the identifier.", "Check the job's id or number and try again."
            )
        chosen = request.check(locked)
        from_state, before = locked.life_cycle_state, _snapshot(locked)
        log, event = request.run_in_memory(locked, chosen, at)
        try:
            _persist(request, [(locked, from_state, before)], [log], [event])
        except _LostRace:
            raise JobStateConflict(
                f"Job {locked.number} was changed by another request first.",
                "Nothing was changed by this request. Reload the job to see its current state.",
            ) from None
    return locked


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one job of a bulk run (or, in a dry run, what would happen)."""

    number: str
    done: bool
    code: str = ""
    reason: str = ""

    @property
    def started(self) -> bool:  # the name start-progress callers have always read
        return self.done


@dataclass(slots=True)
class BulkSummary:
    done: int = 0
    skipped: list[Outcome] = field(default_factory=list)
    dry_run: bool = False

    @property
    def started(self) -> int:  # the name start-progress callers have always read
        return self.done


def _dedupe(numbers: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(n.strip() for n in numbers if n and n.strip()))


def job_bulk_transition(
    *,
    transition: TransitionRef,
    jobs: QuerySet[Job] | Iterable[str],
    status: StatusRef = None,
    user: Any,
    channel: str,
    batch_size: int | None = None,
    dry_run: bool = False,
    on_batch: Callable[[list[Outcome]], None] | None = None,
    **parameters: CatalogRef,
) -> BulkSummary:
    """Run one transition on many jobs: a queryset, or job numbers (unknown ones are skipped as
    JOB_NOT_FOUND).

    Each batch is locked, changed and logged in its own transaction, so a failure loses at most
    its batch and a re-run finishes the rest. One job that cannot move is skipped with its code
    and reason and never stops the others. `on_batch` sees each batch's outcomes once it is
    committed; the summary keeps the count of jobs done and the skipped ones. With `dry_run`,
    nothing is locked or written: the outcomes say what would happen.
    """
    request = _Request.build(
        transition, status=status, parameters=parameters, user=user, channel=channel
    )
    size = batch_size or settings.JOBS_BULK_BATCH_SIZE
    if size < 1:
        raise ValueError("batch_size must be at least 1")
    run = _BulkRun(request, _TypeCache(request.transition.type_defaults), dry_run)
    summary = BulkSummary(dry_run=dry_run)

    def record(outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            if outcome.done:
                summary.done += 1
            else:
                summary.skipped.append(outcome)
        if on_batch is not None and outcomes:
            on_batch(outcomes)

    if isinstance(jobs, QuerySet):
        # Keyset paging over the caller's queryset (which may filter on state, join, or be
        # distinct): each batch is "the next `size` ids after the last one", so memory stays flat
        # and jobs changed by earlier batches do not shift later pages. The ids are read first,
        # then locked by id: locking "id IN (the next ids)" made PostgreSQL scan the whole table
        # for every batch. Each job's state is checked again under its lock.
        ids = jobs.order_by("pk").values_list("pk", flat=True)
        last_pk = 0
        while batch := list(ids.filter(pk__gt=last_pk)[:size]):
            record(run.batch(Job.objects.filter(pk__in=batch)))
            if len(batch) < size:
                break
            last_pk = batch[-1]
    else:
        numbers = _dedupe(jobs)
        for start in range(0, len(numbers), size):
            chunk = numbers[start : start + size]
            outcomes = run.batch(Job.objects.filter(number__in=chunk))
            found = {outcome.number: outcome for outcome in outcomes}
            record(
                [
                    found.get(n) or Outcome(n, False, JobNotFound.code, "No job has this number.")
                    for n in chunk
                ]
            )
    return summary


_RACE_RETRIES = 3


@dataclass(slots=True)
class _BulkRun:
    request: _Request
    types: _TypeCache
    dry_run: bool

    def batch(self, jobs: QuerySet[Job]) -> list[Outcome]:
        """Run one batch in its own transaction; return its outcomes."""
        for _attempt in range(_RACE_RETRIES):
            started = time.perf_counter()
            try:
                with transaction.atomic():
                    outcomes = self._run(jobs)
                self._report(outcomes, time.perf_counter() - started)
                return outcomes
            except _LostRace:
                # Only where the database could not lock the rows for us; the re-read sees the
                # winner's state and reports those jobs as conflicts.
                continue
        raise JobStateConflict(
            "Jobs in this batch kept changing while being moved.",
            "Nothing in this batch was changed. Run the same command again.",
        )

    def _report(self, outcomes: list[Outcome], seconds: float) -> None:
        """One log line and the counters for a committed batch."""
        declared, channel = self.request.transition, self.request.channel
        by_outcome = Counter(declared.past if o.done else o.code for o in outcomes)
        if not self.dry_run:
            for outcome, amount in by_outcome.items():
                _count(self.request, outcome, amount)
        logger.info(
            "transition batch",
            extra={
                "transition": declared.name,
                "channel": channel,
                "dry_run": self.dry_run,
                "jobs": len(outcomes),
                "outcomes": dict(by_outcome),
                "duration_ms": round(seconds * 1000, 2),
            },
        )

    def _run(self, jobs: QuerySet[Job]) -> list[Outcome]:
        if self.dry_run:
            loaded = list(jobs.only(*_JOB_FIELDS).order_by("pk"))
        else:
            loaded = list(_locked(jobs))
        self.types.attach(loaded)
        at = _Moment.now()
        outcomes: list[Outcome] = []
        done: list[tuple[Job, str, tuple]] = []
        log_rows: list[tuple] = []
        event_rows: list[tuple] = []
        for job in loaded:
            try:
                chosen = self.request.check(job)
            except JobsError as refusal:
                outcomes.append(Outcome(job.number, False, refusal.code, refusal.message))
                continue
            outcomes.append(Outcome(job.number, True))
            if not self.dry_run:
                from_state, before = job.life_cycle_state, _snapshot(job)
                log_row, event_row = self.request.run_in_memory(job, chosen, at)
                log_rows.append(log_row)
                event_rows.append(event_row)
                done.append((job, from_state, before))
        if done:
            _persist(self.request, done, log_rows, event_rows)
        return outcomes


def start_progress(**kwargs: Any) -> Job:
    """`job_transition` for start progress, the first transition, under its original name."""
    return job_transition(transition=START_PROGRESS, **kwargs)


def bulk_start_progress(**kwargs: Any) -> BulkSummary:
    """`job_bulk_transition` for start progress, under its original name."""
    return job_bulk_transition(transition=START_PROGRESS, **kwargs)


__all__ = [
    "BulkSummary",
    "Outcome",
    "ParameterResolver",
    "StatusResolver",
    "bulk_start_progress",
    "ensure_permitted",
    "job_bulk_transition",
    "job_transition",
    "start_progress",
]
