"""What happened to jobs: the transition log, the outbox of events, and the answers kept for
an `Idempotency-Key`."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from jobs.models.catalog import JobCancellationReason, JobStatus
from jobs.models.choices import Channel, LifeCycleState, in_choices
from jobs.models.job import Job
from jobs.models.runs import TransitionRun


class JobTransitionLog(models.Model):
    """One row per transition, written in the same transaction as the state it records."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="transitions")
    transition = models.CharField(max_length=30, help_text="the Job method that ran")
    from_state = models.CharField(max_length=20, choices=LifeCycleState.choices)
    to_state = models.CharField(max_length=20, choices=LifeCycleState.choices)
    from_status = models.ForeignKey(
        JobStatus, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    to_status = models.ForeignKey(JobStatus, null=True, on_delete=models.SET_NULL, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    cancellation_reason = models.ForeignKey(
        JobCancellationReason, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    run = models.ForeignKey(
        TransitionRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="log"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            in_choices("from_state", LifeCycleState),
            in_choices("to_state", LifeCycleState),
            in_choices("channel", Channel),
        ]

    def __str__(self) -> str:
        return f"{self.transition}: {self.from_state} → {self.to_state}"


class JobUpdate(models.Model):
    """One update of a job's fields (jobs.services.updates), written in the update's own
    transaction, beside the transition log: who, when, through which door, and each field's value
    before and after."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="updates")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    created_at = models.DateTimeField(default=timezone.now)
    changes = models.JSONField(help_text='each field changed: {"from": …, "to": …}')

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [in_choices("channel", Channel)]

    def __str__(self) -> str:
        return f"update of {', '.join(self.changes)}"


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


def _event_about(model: type[models.Model]) -> models.ForeignKey:
    # No constraint: the outbox keeps an event whose job or run was deleted since.
    return models.ForeignKey(
        model,
        null=True,
        editable=False,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )


class IdempotencyKey(models.Model):
    """A create's `Idempotency-Key` (ours): claimed before the request runs, then holding its
    answer, written in the same transaction as the job it made (jobs.api.idempotency)."""

    # How long a key answers again; older ones are pruned (jobs.retention).
    KEEP = timedelta(hours=24)

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="sha256 of the request it came with")
    claimed_at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, help_text="null while running")
    # The answer as it was sent, byte for byte (a JSON column would reorder its keys).
    answer = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_once")]
        indexes = [models.Index(fields=["claimed_at"], name="idempotency_key_age")]

    def __str__(self) -> str:
        return self.key


class Event(models.Model):
    """The outbox: one row per job per transition, written in the transition's own transaction,
    so an event exists exactly when its transition committed. Other systems read them in order
    (`GET events`)."""

    public_id = models.CharField(max_length=40, unique=True, default=new_event_id, editable=False)
    type = models.CharField(max_length=50)
    timestamp = models.DateTimeField(help_text="when the transition's batch ran")
    data = models.JSONField()
    # The id of the transaction that wrote the row (PostgreSQL's pg_current_xact_id(); 0 where
    # writers take turns, as on SQLite). The feed is ordered by (txid, id) and hands out only
    # rows that no transaction still running can come before: see jobs.events.
    txid = models.BigIntegerField(default=0, editable=False)
    # Whether a worker has made this event's webhook deliveries (see jobs.tasks.fan_out).
    fanned_out = models.BooleanField(default=False, editable=False)
    # Whom the event is about: the feed hands each reader what they see (jobs.visibility).
    job = _event_about(Job)
    run = _event_about(TransitionRun)

    class Meta:
        ordering = ["txid", "id"]
        indexes = [
            models.Index(fields=["txid", "id"], name="event_feed_order"),
            models.Index(fields=["id"], condition=Q(fanned_out=False), name="event_not_fanned_out"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.type}"
