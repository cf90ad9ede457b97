"""The statements every request runs, written out: the token's user, one job's lock, the writes.

Built by the ORM, these cost more Python than the database took to run them, so each is SQL
text, made once per shape from the models' `_meta` and run with `connection.cursor()`. Rows
become instances through `Model.from_db`; nothing here depends on how the ORM builds queries.
`tests/test_sql.py` holds each statement to what the plain ORM gives for the same input.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection, models
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from jobs.models import Assignment, Job, JobStatus, JobType


def quote(name: str) -> str:
    return connection.ops.quote_name(name)


def table(model: type[models.Model]) -> str:
    return quote(model._meta.db_table)


def column(model: type[models.Model], field: str) -> str:
    return quote(model._meta.get_field(field).column)


@dataclass(frozen=True)
class Part:
    """One model's columns in a SELECT, under `alias`, and how they become an instance."""

    model: type[models.Model]
    alias: str
    fields: tuple[models.Field, ...]

    @classmethod
    def of(cls, model: type[models.Model], alias: str, names: Iterable[str] = ()) -> Part:
        """The model's columns named (by attname or name), the primary key first; all of them
        when none are named."""
        meta = model._meta
        wanted = set(names)
        fields = [
            f for f in meta.concrete_fields if not wanted or f.attname in wanted or f.name in wanted
        ]
        fields.sort(key=lambda f: not f.primary_key)
        return cls(model, alias, tuple(fields))

    @property
    def select(self) -> list[str]:
        return [f"{self.alias}.{quote(f.column)}" for f in self.fields]

    def build(self, values: Sequence[Any]) -> Any:
        """The instance, or None for the missing side of an outer join (a null primary key)."""
        if values[0] is None:
            return None
        names = [f.attname for f in self.fields]
        return self.model.from_db(connection.alias, names, [_aware(v) for v in values])


def _aware(value: Any) -> Any:
    # SQLite hands back the naive UTC time it stores; the ORM makes it aware, and so do we.
    if settings.USE_TZ and isinstance(value, datetime) and timezone.is_naive(value):
        return value.replace(tzinfo=UTC)
    return value


def _aggregate_text(expression: str) -> str:
    """The values of `expression` over the rows, joined by the separator given as a parameter."""
    function = "string_agg" if connection.vendor == "postgresql" else "group_concat"
    return f"{function}({expression}, %s)"


# Permission names are "app_label.codename"; a separator no codename holds.
PERMISSION_SEPARATOR = "\x1f"


@dataclass(frozen=True)
class UserOfToken:
    """A token's user, whether the token was released, and the user's permission names."""

    user: Any
    released: bool
    permissions: frozenset[str]


@cache
def _user_of_token_statement(vendor: str) -> tuple[str, Part]:
    user_model = get_user_model()
    user = Part.of(user_model, "u")
    user_groups = user_model.groups.through
    user_permissions = user_model.user_permissions.through
    group_permissions = Group.permissions.through
    name = f"ct.{column(ContentType, 'app_label')} || '.' || p.{column(Permission, 'codename')}"
    user_pk = f"u.{quote(user_model._meta.pk.column)}"
    # The user's own permissions and their groups', read through the user's group rows: one join
    # fewer for PostgreSQL to plan than through the groups.
    permissions = (
        f"SELECT {_aggregate_text(name)} FROM {table(Permission)} p "
        f"JOIN {table(ContentType)} ct "
        f"ON ct.{quote('id')} = p.{column(Permission, 'content_type')} "
        f"WHERE p.{quote('id')} IN "
        f"(SELECT up.{column(user_permissions, 'permission')} FROM {table(user_permissions)} up "
        f"WHERE up.{column(user_permissions, 'user')} = {user_pk} "
        f"UNION SELECT gp.{column(group_permissions, 'permission')} "
        f"FROM {table(group_permissions)} gp JOIN {table(user_groups)} ug "
        f"ON ug.{column(user_groups, 'group')} = gp.{column(group_permissions, 'group')} "
        f"WHERE ug.{column(user_groups, 'user')} = {user_pk})"
    )
    released = (
        f"EXISTS (SELECT 1 FROM {table(BlacklistedToken)} b JOIN {table(OutstandingToken)} o "
        f"ON o.{quote('id')} = b.{column(BlacklistedToken, 'token')} "
        f"WHERE o.{column(OutstandingToken, 'jti')} = %s)"
    )
    sql = (
        f"SELECT {', '.join(user.select)}, {released}, ({permissions}) "
        f"FROM {table(user_model)} u WHERE {user_pk} = %s"
    )
    return sql, user


def user_of_token(user_pk: Any, jti: str) -> UserOfToken | None:
    """The user a token names, with its release and permissions: one query. None if the user
    no longer exists."""
    sql, user = _user_of_token_statement(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql, [jti, PERMISSION_SEPARATOR, user_pk])
        row = cursor.fetchone()
    if row is None:
        return None
    width = len(user.fields)
    names = row[width + 1]
    return UserOfToken(
        user.build(row[:width]),
        bool(row[width]),
        frozenset(names.split(PERMISSION_SEPARATOR) if names else ()),
    )


def token_released(jti: str) -> bool:
    """Whether a token was released, for a token whose user is gone."""
    return BlacklistedToken.objects.filter(token__jti=jti).exists()


# --- one job's lock -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Wanted:
    """A catalog entry a transition asks for by identifier (a status, a cancellation reason):
    read with the job, with whether the job's type allows it when that matters."""

    model: type[models.Model]
    field: str  # the identifier's field: id, name or alternative_code
    check_allowed: bool


@dataclass(frozen=True)
class LockedRow:
    """What one job's lock reads, as instances."""

    job: Job
    leaving_status: dict[str, Any]  # the status the job leaves, as its event names it
    wanted: list[tuple[Any, bool]]  # each Wanted entry (or None) and whether the type allows it


@dataclass(frozen=True)
class _LockStatement:
    sql: str
    job: Part
    job_type: Part
    defaults: tuple[tuple[str, Part], ...]  # the type's default for each relation
    assignment: tuple[Part, Part, Part] | None
    author: Part | None
    wanted: tuple[tuple[Part, bool], ...]


@cache
def _lock_statement(
    vendor: str,
    by: str,
    type_defaults: tuple[str, ...],
    wanted: tuple[Wanted, ...],
    with_assignment: bool,
    with_author: bool,
) -> _LockStatement:
    """One job's lock, by its `by` column, with its type, the type's defaults, the entries asked
    for, and (for the caller's answer) its assignment and author."""
    job = Part.of(Job, "j")
    job_type = Part.of(JobType, "t")
    status_pk, type_pk = quote(JobStatus._meta.pk.column), quote(JobType._meta.pk.column)
    parts: list[Part] = [job, job_type]
    joins = [f"JOIN {table(JobType)} t ON t.{type_pk} = j.{column(Job, 'type')}"]
    defaults = []
    for index, relation in enumerate(type_defaults):
        target = JobType._meta.get_field(relation).related_model
        part = Part.of(target, f"d{index}")
        defaults.append((relation, part))
        parts.append(part)
        joins.append(
            f"LEFT JOIN {table(target)} d{index} "
            f"ON d{index}.{quote(target._meta.pk.column)} = t.{column(JobType, relation)}"
        )
    assignment = None
    if with_assignment:
        user_model = get_user_model()
        assignment = (
            Part.of(Assignment, "a"),
            Part.of(user_model, "au", ["id", "username", "first_name", "last_name", "email"]),
            Part.of(Group, "ag", ["id", "name"]),
        )
        parts.extend(assignment)
        joins += [
            f"LEFT JOIN {table(Assignment)} a ON a.{column(Assignment, 'job')} = j.{quote('id')}",
            f"LEFT JOIN {table(user_model)} au "
            f"ON au.{quote('id')} = a.{column(Assignment, 'user')}",
            f"LEFT JOIN {table(Group)} ag ON ag.{quote('id')} = a.{column(Assignment, 'unit')}",
        ]
    author = None
    if with_author:
        user_model = get_user_model()
        author = Part.of(user_model, "cu", ["id", "username"])
        parts.append(author)
        joins.append(
            f"LEFT JOIN {table(user_model)} cu "
            f"ON cu.{quote('id')} = j.{column(Job, 'created_by_user')}"
        )
    wanted_parts = []
    allowed_checks = []
    through = JobType.allowed_statuses.through
    for index, entry in enumerate(wanted):
        part = Part.of(entry.model, f"w{index}")
        wanted_parts.append((part, entry.check_allowed))
        parts.append(part)
        joins.append(
            f"LEFT JOIN {table(entry.model)} w{index} "
            f"ON w{index}.{column(entry.model, entry.field)} = %s"
        )
        if entry.check_allowed:
            allowed_checks.append(
                f"EXISTS (SELECT 1 FROM {table(through)} x "
                f"WHERE x.{column(through, 'jobtype')} = j.{column(Job, 'type')} "
                f"AND x.{column(through, 'jobstatus')} = w{index}.{status_pk})"
            )
    # The status the job leaves comes from subqueries, not a join: when the row changed while we
    # waited for its lock, PostgreSQL re-reads it, and a join on the old status would then drop
    # the row (a job "not found" instead of a conflict).
    leaving = [
        f"(SELECT s.{column(JobStatus, name)} FROM {table(JobStatus)} s "
        f"WHERE s.{status_pk} = j.{column(Job, 'status')})"
        for name in ("name", "alternative_code")
    ]
    columns = [c for part in parts for c in part.select] + leaving + allowed_checks
    # FOR UPDATE OF the job alone: PostgreSQL refuses to lock the nullable side of an outer join.
    # SQLite has no row locks; its writers take turns (BEGIN IMMEDIATE, see settings) and the
    # compare-and-set write catches the rest.
    lock = " FOR UPDATE OF j" if vendor == "postgresql" else ""
    sql = (
        f"SELECT {', '.join(columns)} FROM {table(Job)} j {' '.join(joins)} "
        f"WHERE j.{column(Job, by)} = %s{lock}"
    )
    return _LockStatement(
        sql, job, job_type, tuple(defaults), assignment, author, tuple(wanted_parts)
    )


def lock_job(
    by: str,
    value: Any,
    *,
    type_defaults: tuple[str, ...],
    wanted: Sequence[tuple[Wanted, Any]] = (),
    with_assignment: bool = False,
    with_author: bool = False,
) -> LockedRow | None:
    """Lock the job whose `by` column is `value` (inside a transaction), reading everything a
    transition and its answer need: one query."""
    statement = _lock_statement(
        connection.vendor,
        by,
        tuple(type_defaults),
        tuple(entry for entry, _ in wanted),
        with_assignment,
        with_author,
    )
    with connection.cursor() as cursor:
        cursor.execute(statement.sql, [*(v for _, v in wanted), value])
        row = cursor.fetchone()
    if row is None:
        return None
    values = iter(row)

    def take(part: Part) -> Any:
        return part.build([next(values) for _ in part.fields])

    job: Job = take(statement.job)
    job.type = take(statement.job_type)
    for relation, part in statement.defaults:
        setattr(job.type, relation, take(part))
    if statement.assignment is not None:
        assignment, user, unit = (take(p) for p in statement.assignment)
        if assignment is not None:
            assignment.user, assignment.unit = user, unit
            assignment.job = job
        job.assigned_to_loaded = assignment
    if statement.author is not None:
        job.created_by_user = take(statement.author)
    found = [take(part) for part, _ in statement.wanted]
    name, alternative_code = next(values), next(values)
    leaving = {"id": job.status_id, "name": name, "alternative_code": alternative_code}
    checks = iter(values)
    wanted_rows = [
        (entry, bool(next(checks)) if check_allowed else True)
        for entry, (_, check_allowed) in zip(found, statement.wanted, strict=True)
    ]
    return LockedRow(job, leaving, wanted_rows)


# --- the writes ---------------------------------------------------------------------------------


@cache
def update_one_sql(vendor: str, names: tuple[str, ...]) -> str:
    """One job's compare-and-set UPDATE of the columns `names`: written only if the job is still
    in the state it was read in. Parameters: the values, the job's id, the state read."""
    assignments = ", ".join(f"{column(Job, name)} = %s" for name in names)
    return (
        f"UPDATE {table(Job)} SET {assignments} "
        f"WHERE {quote(Job._meta.pk.column)} = %s AND {column(Job, 'life_cycle_state')} = %s"
    )


@dataclass(frozen=True)
class Rows:
    """Rows to insert into one table: values for `fields` (model field names), in that order, and
    columns every row computes in SQL (`computed`: column, PostgreSQL's SQL, SQLite's SQL)."""

    model: type[models.Model]
    fields: tuple[str, ...]
    rows: list[tuple]
    computed: tuple[tuple[str, str, str], ...] = ()

    def insert_sql(self, *, as_json: bool) -> str:
        return insert_sql(self.model, self.fields, self.computed, connection.vendor, as_json)

    def as_json(self) -> str:
        """Every row as one JSON array of objects: json.dumps does in C what the driver did in
        Python for each value of each row."""
        columns = [self.model._meta.get_field(name).column for name in self.fields]
        # Times as str(): ISO 8601 with every microsecond, which PostgreSQL reads back exactly.
        return json.dumps([dict(zip(columns, row, strict=True)) for row in self.rows], default=str)


@cache
def insert_sql(
    model: type[models.Model],
    names: tuple[str, ...],
    computed: tuple[tuple[str, str, str], ...],
    vendor: str,
    as_json: bool,
) -> str:
    """The INSERT of `Rows`: one row of placeholders (for execute and executemany), or, `as_json`
    (PostgreSQL), every row from one JSON parameter."""
    fields = [model._meta.get_field(name) for name in names]
    columns = [f.column for f in fields] + [name for name, _, _ in computed]
    values = [pg if vendor == "postgresql" else sqlite for _, pg, sqlite in computed]
    into = f"INSERT INTO {table(model)} ({', '.join(map(quote, columns))})"
    if not as_json:
        return f"{into} VALUES ({', '.join(['%s'] * len(fields) + values)})"
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
EVENT_COMPUTED = (
    ("txid", "pg_current_xact_id()::text::bigint", "0"),
    ("fanned_out", "FALSE", "FALSE"),
)
EVENT_FIELDS = ("public_id", "type", "timestamp", "data")


def write(update: tuple[str, list[Any]] | None, inserts: list[Rows]) -> int:
    """Run the compare-and-set UPDATE (if given), then the INSERTs; return how many jobs the
    UPDATE changed.

    On PostgreSQL that is one statement, the INSERTs as data-modifying WITH queries taking their
    rows as one JSON parameter each: a round trip cost about as much as the statement it carried.
    """
    sql, params = update if update is not None else ("", [])
    if connection.vendor == "postgresql":
        steps = [f"changed AS ({sql} RETURNING 1)"] if update is not None else []
        for index, rows in enumerate(inserts):
            steps.append(f"written_{index} AS ({rows.insert_sql(as_json=True)})")
            params = [*params, rows.as_json()]
        count = "SELECT count(*) FROM changed" if update is not None else "SELECT 0"
        with connection.cursor() as cursor:
            cursor.execute(f"WITH {', '.join(steps)} {count}", params)
            return cursor.fetchone()[0]
    updated = 0
    with connection.cursor() as cursor:
        if update is not None:
            cursor.execute(sql, params)
            updated = cursor.rowcount
        for rows in inserts:
            cursor.executemany(rows.insert_sql(as_json=False), rows.rows)
    return updated
