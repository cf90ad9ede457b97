"""Bulk transitions carried out in the background: a run and the chunks workers lease."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from jobs.models.choices import Channel, in_choices


class RunState(models.TextChoices):
    QUEUED = "QUEUED", "Queued"
    RUNNING = "RUNNING", "Running"
    FINISHED = "FINISHED", "Finished"
    FAILED = "FAILED", "Failed"
    STOPPED = "STOPPED", "Stopped"


RUN_ENDED = (RunState.FINISHED, RunState.FAILED, RunState.STOPPED)


class TransitionRun(models.Model):
    """A bulk transition carried out in the background (jobs.services.runs): written before any
    job moves, and its counts updated in each batch's own transaction, so they always equal the
    transition log rows that name it."""

    transition = models.CharField(max_length=30, help_text="the transition it carries out")
    state = models.CharField(max_length=10, choices=RunState.choices, default=RunState.QUEUED)
    selection = models.JSONField(
        help_text="a filter in GET jobs names with up_to_id, frozen when queued; or ids"
    )
    choices = models.JSONField(
        default=dict, help_text="the status and extra parameters asked for, by id"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    selected = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="jobs the selection held when the run started"
    )
    moved = models.PositiveBigIntegerField(default=0)
    moved_first = models.JSONField(default=list, help_text="the first numbers moved")
    skipped = models.JSONField(
        default=dict, help_text='by code: {"count": n, "numbers": the first few}'
    )
    stop_requested = models.BooleanField(default=False)
    stopped_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="who asked the run to stop",
    )
    created_date = models.DateTimeField(default=timezone.now, editable=False)
    started_date = models.DateTimeField(null=True, blank=True)
    finished_date = models.DateTimeField(null=True, blank=True)
    nudged_date = models.DateTimeField(
        null=True, blank=True, help_text="when the sweep last sent its work out again"
    )
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [in_choices("state", RunState), in_choices("channel", Channel)]
        indexes = [models.Index(fields=["state"], name="transition_run_state")]

    def __str__(self) -> str:
        # "Start progress, run 3": the transition as the admin's buttons name it.
        return f"{self.transition.replace('_', ' ').capitalize()}, run {self.pk}"

    @property
    def skipped_count(self) -> int:
        return sum(group["count"] for group in self.skipped.values())

    @property
    def ended(self) -> bool:
        return self.state in RUN_ENDED


class TransitionRunChunk(models.Model):
    """A keyset page of a run's selection, ids in (after_id, up_to_id]: the unit a worker leases.
    `after_id` advances with each committed batch, so a chunk taken over resumes where it was."""

    run = models.ForeignKey(TransitionRun, on_delete=models.CASCADE, related_name="chunks")
    after_id = models.BigIntegerField()
    up_to_id = models.BigIntegerField()
    done = models.BooleanField(default=False)
    lessee = models.CharField(max_length=64, blank=True)
    leased_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "up_to_id"]
        indexes = [models.Index(fields=["run", "done"], name="run_chunk_open")]

    def __str__(self) -> str:
        return f"run {self.run_id}: ids {self.after_id + 1} to {self.up_to_id}"
