"""Reading the outbox as a feed: oldest first, by a cursor a client keeps.

The order is (txid, id): the writing transaction's id, then the row's. On PostgreSQL, ids are
handed out when rows are written, not when they commit, so a transaction that started earlier can
commit later, below rows already read. The feed therefore only hands out rows whose txid is below
the oldest transaction still running (the snapshot's xmin): nothing can commit before them any
more, so a client that stores the last cursor never misses an event and never sees one twice.
On SQLite writers take turns (BEGIN IMMEDIATE), so ids follow commit order and txid is 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL

from jobs.exceptions import EventNotFound, InvalidParameter
from jobs.identifiers import MAX_ID
from jobs.models import Event
from jobs.transitions import TRANSITIONS

# A background run that ends, in any state (jobs.services.runs).
RUN_FINISHED = "transition_run.finished"
# A job made through the API (jobs.services.intake).
JOB_CREATED = "job.created"
# A job's fields changed, not its state (jobs.services.updates).
JOB_UPDATED = "job.updated"
EVENT_TYPES = (JOB_CREATED, JOB_UPDATED, *(t.event for t in TRANSITIONS.values()), RUN_FINISHED)
CURSOR_PATTERN = r"^\d{1,19}_\d{1,19}$"
_CURSOR = re.compile(r"^(\d{1,19})_(\d{1,19})$")


@dataclass(frozen=True, slots=True)
class Cursor:
    txid: int
    id: int

    def __str__(self) -> str:
        return f"{self.txid}_{self.id}"

    @classmethod
    def of(cls, event: Event) -> Cursor:
        return cls(event.txid, event.pk)

    @classmethod
    def parse(cls, raw: str) -> Cursor:
        match = _CURSOR.match(raw)
        if not match:
            raise InvalidParameter(
                "after is not a cursor this feed gave out.",
                "Send the paging.after of a previous answer, or leave after out to start from "
                "the oldest event.",
            )
        cursor = cls(int(match.group(1)), int(match.group(2)))
        # Past the columns' range a cursor is well formed but names nothing (as an id in a path).
        beyond = cursor.txid > MAX_ID or cursor.id > MAX_ID
        if beyond or not Event.objects.filter(pk=cursor.id, txid=cursor.txid).exists():
            raise EventNotFound(
                "after names no event of this feed.",
                "Send the paging.after of a previous answer, or leave after out to start from "
                "the oldest event.",
            )
        return cursor


def parse_types(raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    types = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = [name for name in types if name not in EVENT_TYPES]
    if not types or unknown:
        raise InvalidParameter(
            f"types names unknown event types: {', '.join(unknown)[:200] or '(none)'}.",
            f"Name some of: {', '.join(EVENT_TYPES)}.",
        )
    return types


def settled(events: QuerySet[Event]) -> QuerySet[Event]:
    """Only the events no running transaction can still come before (and the reader's own, if
    its transaction wrote any)."""
    if connection.vendor != "postgresql":
        return events
    horizon = RawSQL("pg_snapshot_xmin(pg_current_snapshot())::text::bigint", [])
    own = RawSQL("pg_current_xact_id_if_assigned()::text::bigint", [])
    return events.filter(Q(txid__lt=horizon) | Q(txid=own))


def events_after(
    after: Cursor | None, *, types: list[str] | None, limit: int, seen: Q
) -> list[Event]:
    """The next `limit` events after the cursor that the reader sees (`seen`,
    jobs.visibility.events_seen_by)."""
    events = settled(Event.objects.filter(seen, type__in=types or EVENT_TYPES))
    if after is not None:
        events = events.filter(Q(txid__gt=after.txid) | Q(txid=after.txid, id__gt=after.id))
    return list(events.order_by("txid", "id")[:limit])


def as_json(event: Event) -> dict[str, Any]:
    return {
        "id": event.public_id,
        "type": event.type,
        "timestamp": event.timestamp.isoformat().replace("+00:00", "Z"),
        "data": event.data,
    }
