"""Querysets the ORM builds and compiles once per process, then runs again with other values.

For a query run on every request, building the queryset and compiling its SQL took longer than
the database took to plan and run it. A `CompiledQuery` is built from a queryset whose variable
values are stand-ins (markers); each run puts the real values where the markers were and reads
the rows into model instances the way the queryset would (related objects, annotations and the
fields' converters included).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators


def preparing_cursor(using: str = DEFAULT_DB_ALIAS) -> CursorWrapper:
    """A cursor whose statements psycopg prepares on PostgreSQL from their second run on the
    connection, so the server stops planning them (see DATABASE_PREPARED_STATEMENTS).

    For the few statements every request runs: Django's own cursors bind parameters on the client,
    which never prepares, unless DATABASE_PREPARED_STATEMENTS=all makes every cursor prepare."""
    connection = connections[using]
    if (
        connection.vendor != "postgresql"
        or connection.features.uses_server_side_binding
        or settings.DATABASE_PREPARED_STATEMENTS == "none"
    ):
        return connection.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.ensure_connection()
    connection.validate_thread_sharing()
    with connection.wrap_database_errors:
        cursor = ServerBindingCursor(connection.connection)
    if connection.queries_logged:
        return _LoggedPreparingCursor(cursor, connection)
    return connection.make_cursor(cursor)


class _LoggedPreparingCursor(CursorDebugWrapper):
    """Logs each statement with its values, as Django's own cursors do: psycopg cannot tell the
    statement it ran from a prepared one (Django would log None)."""

    def execute(self, sql: str, params: Any = None) -> Any:
        with self.debug_sql(self.db.ops.compose_sql(sql, params)):
            return CursorWrapper.execute(self, sql, params)


class NotCompilable(Exception):
    """A marker did not appear exactly once among the compiled query's parameters: the caller
    runs the queryset as usual instead."""


class CompiledQuery:
    """`queryset`'s SQL, compiled now, to be run with `markers` replaced by other values.

    Each marker must be a value that appears exactly once among the query's parameters, exactly as
    given (a lookup that transforms its value, such as `contains`, cannot be compiled this way).
    Compiling a `select_for_update()` queryset needs a transaction, as running it does.
    """

    def __init__(self, queryset: QuerySet, markers: Sequence[Any]) -> None:
        self._using = queryset.db
        compiler = queryset.query.get_compiler(using=self._using)
        sql, params = compiler.as_sql()
        params = list(params)
        self._positions = []
        for marker in markers:
            found = [i for i, p in enumerate(params) if type(p) is type(marker) and p == marker]
            if len(found) != 1:
                raise NotCompilable(f"{marker!r} is not exactly one of the query's parameters")
            self._positions.append(found[0])
        self._sql, self._params, self._compiler = sql, params, compiler
        # What Django's ModelIterable reads from a compiler to turn rows into instances.
        klass_info = compiler.klass_info
        self._model: type[Model] = klass_info["model"]
        fields = klass_info["select_fields"]
        self._own = slice(fields[0], fields[-1] + 1)
        self._init_list = [column[0].target.attname for column in compiler.select[self._own]]
        self._related = get_related_populators(klass_info, compiler.select, self._using)
        self._annotations = compiler.annotation_col_map or {}
        # The fields' conversions of the values read (JSON, dates on SQLite…), found once.
        self._converters = compiler.get_converters(
            [column[0] for column in compiler.select[: compiler.col_count]]
        )

    def objects(self, *values: Any) -> list[Model]:
        """The instances the queryset would give, had it been built with `values`."""
        params = self._params.copy()
        for position, value in zip(self._positions, values, strict=True):
            params[position] = value
        with preparing_cursor(self._using) as cursor:
            cursor.execute(self._sql, params)
            rows = cursor.fetchall()
        if self._compiler.has_extra_select:  # columns added only to order by
            rows = [row[: self._compiler.col_count] for row in rows]
        if self._converters:
            rows = self._compiler.apply_converters(rows, self._converters)
        instances = []
        for row in rows:
            instance = self._model.from_db(self._using, self._init_list, row[self._own])
            for related in self._related:
                related.populate(row, instance)
            for name, position in self._annotations.items():
                setattr(instance, name, row[position])
            instances.append(instance)
        return instances
