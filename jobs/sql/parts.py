"""What the statements are built from: quoted names, and a model's columns in a SELECT."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import connection, models
from django.utils import timezone


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
