"""Bulk transitions in the background: a run is a row written before any job moves, carried out
by workers (jobs.tasks.runs, asked through jobs.services.engine) chunk by chunk through the same
batch path as a bulk run in a order.

- `queue_run` writes the run (QUEUED) and, once committed, asks for it to be planned.
- `plan` counts the selection and cuts it into chunks (keyset pages of ids), then sends out
  JOBS_RUN_TASKS messages; each `work` takes chunks until none is left.
- A chunk is leased: its batches renew the lease and advance its cursor in their own
  transaction, with the run's counts. A worker that dies leaves a lease that runs out; any other
  `work` then takes the chunk over where its last batch committed. Messages come at least once;
  the compare-and-set and the cursor make each job move once and be counted once.
- `stop_run` asks the workers to stop after the batch in hand; `sweep` (Celery beat) sends work
  out again for runs whose messages were lost, and ends runs whose last worker died.
- A run that ends, in any state, leaves the event `transition_run.finished`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from jobs.events import RUN_FINISHED
from jobs.exceptions import JobsError, TransitionRunNotFound
from jobs.models import (
    RunState,
    TransitionRun,
    TransitionRunChunk,
)
from jobs.services import engine
from jobs.services.bulk import Batches, Outcome
from jobs.services.permissions import TransitionRef, ensure_permitted
from jobs.services.records import EventRow, Moment, events
from jobs.services.resolution import CatalogRef, TransitionOrder
from jobs.services.selection import Selection
from jobs.sql.writes import write
from jobs.transitions import get_transition
from jobs.visibility import runs_seen_by, sight_of
from jobs.words import sentence

logger = logging.getLogger(__name__)

# How many numbers a run keeps of the jobs it moved, and of each skip reason.
FIRST_NAMED = 5


def _lease() -> timedelta:
    return timedelta(seconds=settings.JOBS_RUN_LEASE_SECONDS)


# --- the doors' side ---------------------------------------------------------------------------


def queue_run(
    *,
    transition: TransitionRef,
    selection: Selection,
    status: CatalogRef = None,
    user: Any,
    channel: str,
    **parameters: CatalogRef,
) -> TransitionRun:
    """Write a run for the workers; refuse now what would refuse every job (the permission, an
    entry asked for that does not exist)."""
    order = TransitionOrder.build(
        transition, status=status, parameters=parameters, user=user, channel=channel
    )
    with transaction.atomic():
        run = TransitionRun.objects.create(
            transition=order.transition.name,
            selection=selection.frozen(),
            choices=order.frozen_choices(),
            requested_by=user,
            channel=channel,
        )
        engine.run_queued(run.pk)
    logger.info("transition run queued", extra={"run": run.pk, "transition": run.transition})
    return run


def get_run(run_id: int | str, *, seen_by: Any = None) -> TransitionRun:
    """The run, if `seen_by` (when given) sees it (jobs.visibility.runs_seen_by); else, as for
    a run that does not exist, TRANSITION_RUN_NOT_FOUND."""
    runs = TransitionRun.objects.select_related("requested_by", "stopped_by")
    if seen_by is not None:
        runs = runs.filter(runs_seen_by(seen_by))
    run = runs.filter(pk=run_id).first()
    if run is None:
        raise TransitionRunNotFound()
    return run


def stop_run(run_id: int | str, *, user: Any) -> TransitionRun:
    """Stop a run after the batch in hand (a queued run at once). A run that has ended stays as
    it ended."""
    ensure_permitted(user, get_transition(get_run(run_id, seen_by=user).transition))
    with transaction.atomic():
        run = TransitionRun.objects.select_for_update().get(pk=run_id)
        if run.state == RunState.QUEUED:
            run.stop_requested, run.stopped_by = True, user
            _end(run, RunState.STOPPED)
        elif run.state == RunState.RUNNING and not run.stop_requested:
            run.stop_requested, run.stopped_by = True, user
            run.save(update_fields=["stop_requested", "stopped_by"])
    return get_run(run_id)


# --- the workers' side -------------------------------------------------------------------------


def plan(run_id: int) -> None:
    """Count the selection, cut it into chunks, and send the work out (once: a second message
    for the same run finds it running and does nothing)."""
    with transaction.atomic():
        run = TransitionRun.objects.select_for_update(of=("self",)).filter(pk=run_id)
        run = run.select_related("requested_by").first()
        if run is None or run.state != RunState.QUEUED:
            return
        selection = Selection.thaw(run.selection)
        sight = sight_of(run.requested_by)  # the run counts and moves only what they see
        bounds = selection.chunks(settings.JOBS_RUN_CHUNK_SIZE, sight)
        TransitionRunChunk.objects.bulk_create(
            TransitionRunChunk(run=run, after_id=after, up_to_id=up_to) for after, up_to in bounds
        )
        run.selected = selection.count(sight)
        run.state, run.started_date = RunState.RUNNING, timezone.now()
        run.save(update_fields=["selected", "state", "started_date"])
        if not bounds:
            _end(run, RunState.FINISHED)
            return
        engine.run_planned(run.pk, copies=min(len(bounds), settings.JOBS_RUN_TASKS))
    logger.info("transition run planned", extra={"run": run_id, "chunks": len(bounds)})


def work(run_id: int, *, lessee: str, on_batch: Callable[[], None] | None = None) -> None:
    """Carry out the run's chunks until none is left to take, then end the run if it is done.
    `lessee` names this piece of work (the task's id, the same across its retries)."""
    run = TransitionRun.objects.select_related("requested_by").filter(pk=run_id).first()
    if run is None or run.state != RunState.RUNNING:
        return
    try:
        batches = Batches.of(order_of(run))
        chunks = _Chunks(Selection.thaw(run.selection), batches, lessee, on_batch)
        while (chunk := _claim(run.pk, lessee)) is not None and chunks.carry_out(chunk):
            pass
    except JobsError as refusal:
        # The run's record keeps why, in plain words (what an administrator reads later).
        fail(run.pk, sentence(refusal), lessee=lessee)
        return
    finish_if_done(run.pk)


def order_of(run: TransitionRun) -> TransitionOrder:
    """What the run asks of each job, as its requester asked it (the permission checked again)."""
    choices = dict(run.choices)
    return TransitionOrder.build(
        run.transition,
        status=choices.pop("status", None),
        parameters=choices,
        user=run.requested_by,
        channel=run.channel,
        run=run.pk,
    )


def _claim(run_id: int, lessee: str) -> TransitionRunChunk | None:
    """Lease a chunk nobody holds (or this work's own, after a retry)."""
    now = timezone.now()
    with transaction.atomic():
        free = TransitionRunChunk.objects.filter(run_id=run_id, done=False).filter(
            Q(lessee="") | Q(lessee=lessee) | Q(leased_until__lt=now)
        )
        chunk = free.select_for_update(skip_locked=True).order_by("up_to_id").first()
        if chunk is not None:
            chunk.lessee, chunk.leased_until = lessee, now + _lease()
            chunk.save(update_fields=["lessee", "leased_until"])
        return chunk


class _Chunks:
    def __init__(
        self,
        selection: Selection,
        batches: Batches,
        lessee: str,
        on_batch: Callable[[], None] | None,
    ) -> None:
        self.selection, self.batches, self.lessee = selection, batches, lessee
        self.on_batch = on_batch

    def carry_out(self, chunk: TransitionRunChunk) -> bool:
        """Batch by batch, each in one transaction with the chunk's cursor and the run's counts.
        False when the run is to go no further (stopped, or ended)."""
        size = settings.JOBS_BULK_BATCH_SIZE
        while True:
            with transaction.atomic():
                held = TransitionRunChunk.objects.select_for_update().get(pk=chunk.pk)
                if held.done or held.lessee != self.lessee:
                    return True  # taken over by other work: take another
                state, stopping = (
                    TransitionRun.objects.filter(pk=held.run_id)
                    .values_list("state", "stop_requested")
                    .get()
                )
                if state != RunState.RUNNING or stopping:
                    held.lessee, held.leased_until = "", None
                    held.save(update_fields=["lessee", "leased_until"])
                    return False
                ids = self.selection.next_ids(
                    after=held.after_id,
                    up_to=held.up_to_id,
                    size=size,
                    sight=self.batches.order.sight,
                )
                outcomes = self.batches.of_ids(ids) if ids else []
                held.done = len(ids) < size
                held.after_id = held.up_to_id if held.done else ids[-1]
                held.leased_until = timezone.now() + _lease()
                held.save(update_fields=["done", "after_id", "leased_until"])
                if outcomes:
                    _count(held.run_id, outcomes)
            if self.on_batch is not None:
                self.on_batch()
            if held.done:
                return True


def _count(run_id: int, outcomes: list[Outcome]) -> None:
    """Add a batch's outcomes to the run, in the batch's transaction."""
    run = (
        TransitionRun.objects.select_for_update()
        .only("moved", "moved_first", "skipped")
        .get(pk=run_id)
    )
    for outcome in outcomes:
        if outcome.done:
            run.moved += 1
            if len(run.moved_first) < FIRST_NAMED:
                run.moved_first.append(outcome.number)
            continue
        group = run.skipped.setdefault(outcome.code, {"count": 0, "numbers": []})
        group["count"] += 1
        if outcome.number and len(group["numbers"]) < FIRST_NAMED:
            group["numbers"].append(outcome.number)
    run.save(update_fields=["moved", "moved_first", "skipped"])


def finish_if_done(run_id: int) -> bool:
    """End a running run whose work is over: every chunk done (FINISHED), or, once asked to
    stop, no chunk still held (STOPPED, or FAILED when a worker failed it)."""
    now = timezone.now()
    with transaction.atomic():
        run = TransitionRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.state != RunState.RUNNING:
            return False
        open_chunks = run.chunks.filter(done=False)
        if run.stop_requested:
            if open_chunks.filter(leased_until__gte=now).exists():
                return False
            _end(run, RunState.FAILED if run.error else RunState.STOPPED)
            return True
        if open_chunks.exists():
            return False
        _end(run, RunState.FINISHED)
        return True


def fail(run_id: int, error: str, *, lessee: str = "") -> None:
    """Fail the run: the other workers stop after the batch in hand, as for a stop, and the last
    one out ends it FAILED, so that its event's counts are final."""
    with transaction.atomic():
        run = TransitionRun.objects.select_for_update().get(pk=run_id)
        if run.ended:
            return
        run.error, run.stop_requested = error, True
        run.save(update_fields=["error", "stop_requested"])
        if lessee:
            TransitionRunChunk.objects.filter(run_id=run_id, lessee=lessee).update(
                lessee="", leased_until=None
            )
    logger.error("transition run failed", extra={"run": run_id, "error": error})
    finish_if_done(run_id)


def _end(run: TransitionRun, state: str) -> None:
    """Close the run and write its event, in the caller's transaction."""
    run.state, run.finished_date = state, timezone.now()
    run.save(update_fields=["state", "finished_date", "stop_requested", "stopped_by", "error"])
    finished = EventRow.of(RUN_FINISHED, finished_data(run), Moment.now(), run=run.pk)
    write(None, [events([finished])])
    engine.events_written()
    logger.info("transition run ended", extra={"run": run.pk, "state": state})


def summary(run: TransitionRun) -> dict[str, Any]:
    """A run in short, as its end event and the command's JSON tell it: what, how, its counts."""
    user = run.requested_by
    return {
        "id": run.pk,
        "transition": run.transition,
        "state": run.state,
        "channel": run.channel,
        "requested_by": {"id": user.pk, "username": user.get_username()},
        "selected": run.selected,
        "moved": run.moved,
        "skipped": {code: group["count"] for code, group in run.skipped.items()},
        "error": run.error,
    }


def finished_data(run: TransitionRun) -> dict[str, Any]:
    """The end event's `data`."""
    return {"run": summary(run)}


def sweep() -> int:
    """Periodic (Celery beat): send work out again for runs nobody is working on (their
    messages lost, their workers dead), and end the ones whose last worker died at the end.
    Each run is sent out again at most once per lease."""
    now = timezone.now()
    lease = _lease()
    quiet = Q(nudged_date__isnull=True) | Q(nudged_date__lt=now - lease)
    sent = 0
    queued = TransitionRun.objects.filter(
        quiet, state=RunState.QUEUED, created_date__lt=now - lease
    )
    for run_id in list(queued.values_list("pk", flat=True)):
        TransitionRun.objects.filter(pk=run_id).update(nudged_date=now)
        engine.plan_again(run_id)
        sent += 1
    running = TransitionRun.objects.filter(state=RunState.RUNNING, started_date__lt=now - lease)
    for run in list(running.filter(quiet).only("pk")):
        if run.chunks.filter(done=False, leased_until__gte=now).exists():
            continue  # someone is on it; a lapsed chunk is theirs to take next
        if finish_if_done(run.pk):
            continue
        TransitionRun.objects.filter(pk=run.pk).update(nudged_date=now)
        engine.work_again(run.pk, copies=settings.JOBS_RUN_TASKS)
        sent += 1
    return sent
