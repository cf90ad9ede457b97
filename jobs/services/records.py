"""What a move leaves behind: its transition log row and its event, in one place for the service
and the benchmarks that measure it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from django.db import connection, models
from django.utils import timezone

from jobs.models import Event, Job, JobTransitionLog, new_event_id
from jobs.sql.writes import EVENT_COMPUTED, EVENT_FIELDS, Rows
from jobs.transitions import JobTransition


class LogRow(NamedTuple):
    """A transition log row as inserted (ids for relations, the time as the driver takes it);
    each extra parameter the transition takes adds its entry's id after these."""

    job: int
    transition: str
    from_state: str
    to_state: str
    from_status: int | None
    to_status: int
    user: int
    channel: str
    created_at: Any
    run: int | None


class EventRow(NamedTuple):
    """An event as inserted; the feed's order and the fan-out flag are computed in SQL. `job`
    and `run` say whom it is about, for the feed to show it to those who see them."""

    public_id: str
    type: str
    timestamp: Any
    data: str  # JSON text
    job: int | None
    run: int | None

    @classmethod
    def of(
        cls,
        event_type: str,
        data: dict[str, Any],
        at: Moment,
        *,
        job: int | None = None,
        run: int | None = None,
    ) -> EventRow:
        return cls(new_event_id(), event_type, at.db_value, json.dumps(data), job, run)


def events(rows: list[EventRow]) -> Rows:
    """Events to insert into the outbox: every event of the service is written this way."""
    return Rows(Event, EVENT_FIELDS, rows, EVENT_COMPUTED)


LOG_FIELDS = LogRow._fields


@dataclass(frozen=True, slots=True)
class Moment:
    """The time of a batch, and that time as the database driver takes it."""

    when: datetime
    db_value: Any

    @classmethod
    def now(cls) -> Moment:
        when = timezone.now()
        return cls(when, connection.ops.adapt_datetimefield_value(when))


def reference(entry: models.Model | None) -> dict[str, Any] | None:
    """A status or reason as an event names it."""
    if entry is None:
        return None
    return {"id": entry.pk, "name": entry.name, "alternative_code": entry.alternative_code}


def event_data(
    declared: JobTransition,
    job: Job,
    *,
    from_state: str,
    from_status: dict[str, Any],
    user: Any,
    channel: str,
) -> dict[str, Any]:
    """An event's `data` for a job the transition has just moved (in memory)."""
    return {
        "job": {
            "id": job.pk,
            "number": job.number,
            "type": {"id": job.type_id, "alternative_code": job.type.alternative_code},
        },
        "from_state": from_state,
        "to_state": job.life_cycle_state,
        "from_status": from_status,
        "to_status": reference(job.status),
        "user": {"id": user.pk, "username": user.get_username()},
        "channel": channel,
        **{p.name: reference(getattr(job, p.name)) for p in declared.parameters},
    }


@dataclass(slots=True)
class Records:
    """The log rows and events of a batch's moves, as they will be inserted."""

    declared: JobTransition
    log_rows: list[tuple]
    event_rows: list[EventRow]

    @classmethod
    def empty(cls, declared: JobTransition) -> Records:
        return cls(declared, [], [])

    def add(
        self,
        job: Job,
        *,
        from_state: str,
        from_status: dict[str, Any],
        user: Any,
        channel: str,
        at: Moment,
        run: int | None = None,
    ) -> None:
        declared = self.declared
        row = LogRow(
            job=job.pk,
            transition=declared.name,
            from_state=from_state,
            to_state=job.life_cycle_state,
            from_status=from_status["id"],
            to_status=job.status_id,
            user=user.pk,
            channel=channel,
            created_at=at.db_value,
            run=run,
        )
        self.log_rows.append((*row, *(getattr(job, f"{p.name}_id") for p in declared.parameters)))
        data = event_data(
            declared,
            job,
            from_state=from_state,
            from_status=from_status,
            user=user,
            channel=channel,
        )
        self.event_rows.append(EventRow.of(declared.event, data, at, job=job.pk))

    def rows(self) -> list[Rows]:
        log_fields = (*LOG_FIELDS, *(p.name for p in self.declared.parameters))
        return [
            Rows(JobTransitionLog, log_fields, self.log_rows),
            events(self.event_rows),
        ]
