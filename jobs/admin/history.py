"""A job's history on its page: its transitions and its updates together, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join

from jobs.admin.runs import link_to_run
from jobs.models import Job, JobTransitionLog, JobUpdate

# How many of each the page shows; the transition log's list holds them all.
SHOWN = 50


@dataclass(frozen=True, slots=True)
class Entry:
    at: datetime
    what: str
    detail: str
    who: str
    channel: str
    run: str


def _transition(entry: JobTransitionLog) -> Entry:
    moved = f"{entry.from_state} → {entry.to_state}"
    status = f"status {entry.from_status or '—'} → {entry.to_status or '—'}"
    reason = f", reason {entry.cancellation_reason}" if entry.cancellation_reason_id else ""
    return Entry(
        entry.created_at,
        entry.transition.replace("_", " "),
        f"{moved}, {status}{reason}",
        str(entry.user or "—"),
        entry.get_channel_display(),
        link_to_run(entry.run_id),
    )


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, dict):
        if "user" in value or "unit" in value:  # an assignment
            parts = [value[p] and (value[p].get("username") or value[p].get("name")) for p in value]
            return " / ".join(part for part in parts if part) or "—"
        return str(value.get("name") or value.get("id"))
    return str(value)


def _update(entry: JobUpdate) -> Entry:
    detail = "; ".join(
        f"{field.replace('_', ' ')}: {_shown(change['from'])} → {_shown(change['to'])}"
        for field, change in entry.changes.items()
    )
    return Entry(
        entry.created_at,
        "update",
        detail,
        str(entry.user or "—"),
        entry.get_channel_display(),
        "",
    )


def job_history_table(job: Job) -> str:
    """The job's latest transitions and updates as one table: two queries."""
    if job.pk is None:
        return "—"
    transitions = JobTransitionLog.objects.filter(job=job).select_related(
        "from_status", "to_status", "user", "cancellation_reason"
    )[:SHOWN]
    updates = JobUpdate.objects.filter(job=job).select_related("user")[:SHOWN]
    entries = sorted(
        [*map(_transition, transitions), *map(_update, updates)],
        key=lambda entry: entry.at,
        reverse=True,
    )
    if not entries:
        return "Nothing has happened to this job since it was created."
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                date_format(timezone.localtime(e.at), "Y-m-d H:i:s"),
                e.what,
                e.detail,
                e.who,
                e.channel,
                e.run,
            )
            for e in entries
        ),
    )
    return format_html(
        '<table class="job-history"><thead><tr><th>when</th><th>what</th><th>change</th>'
        "<th>by</th><th>through</th><th>run</th></tr></thead><tbody>{}</tbody></table>",
        rows,
    )
