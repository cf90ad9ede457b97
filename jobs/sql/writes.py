"""Writing moved jobs: the compare-and-set UPDATE of one job, and the INSERTs of log rows and
events, as one statement on PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db import connection, models

from jobs.models import Job
from jobs.sql.parts import column, quote, table


@cache
def update_one_sql(vendor: str, names: tuple[str, ...], guard: str = "life_cycle_state") -> str:
    """One job's compare-and-set UPDATE of the columns `names`, counting its version: written
    only if the job's `guard` column (its state, or its version) still holds the value it was
    read with. Parameters: the values, the job's id, the value read."""
    version = column(Job, "version")
    assignments = ", ".join(
        [*(f"{column(Job, name)} = %s" for name in names), f"{version} = {version} + 1"]
    )
    return (
        f"UPDATE {table(Job)} SET {assignments} "
        f"WHERE {quote(Job._meta.pk.column)} = %s AND {column(Job, guard)} = %s"
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
EVENT_FIELDS = ("public_id", "type", "timestamp", "data", "job", "run")


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
