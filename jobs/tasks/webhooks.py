"""The worker's side of events: fan each new event out to the endpoints that want it, deliver,
and sweep up whatever a lost message, a dead worker or a broker that was down left behind.

Nothing here runs in a request: the transition's transaction only writes the event and, once it
has committed, asks for one "fan out" message (announce), which a thread of the process sends.
If that message is lost, the periodic sweep finds the event all the same.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time

from celery import shared_task
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from jobs import webhooks
from jobs.models import DeliveryState, Event, WebhookDelivery, WebhookEndpoint
from jobs.observability import DATABASE_UNAVAILABLE
from jobs.retention import prune_outbox

logger = logging.getLogger(__name__)
FAN_OUT_BATCH = 1000
# At most one fan-out message per process in this time: the delay a webhook may gain under load.
ANNOUNCE_INTERVAL_SECONDS = 0.05
SWEEP_BATCH = 1000


class _Announcer:
    """After a transition commits: ask a worker to fan its events out (`announce()`).

    The message goes from a thread of the process's own, so no request waits for the broker
    (publishing is a round trip of its own, as long as a request's own work). Commits that come
    while a message is on its way, or less than ANNOUNCE_INTERVAL_SECONDS after it, share the next
    one: a fan-out takes every event not yet fanned out.
    Losing a message loses nothing (the sweep finds the events), so a broker that is down is a
    warning, not a failure; at exit the process waits a moment for what it was asked to send.
    """

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # a forked worker starts its own thread
        atexit.register(self.flush, timeout=2)

    def _reset(self) -> None:
        self._changed = threading.Condition()
        self._asked = self._sent = 0
        self._thread: threading.Thread | None = None

    def __call__(self) -> None:
        with self._changed:
            self._asked += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="announcer", daemon=True)
                self._thread.start()
            self._changed.notify_all()

    def flush(self, timeout: float = 5) -> bool:
        """Wait until what was asked so far has been sent (or given up); False on timeout."""
        with self._changed:
            asked = self._asked
            return self._changed.wait_for(lambda: self._sent >= asked, timeout)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._asked > self._sent)
                asked = self._asked
            _publish_fan_out()
            with self._changed:
                self._sent = asked
                self._changed.notify_all()
            # Commits in the meantime share the next message: under load, one message per
            # interval instead of one per commit (each costs the process as much as a request).
            time.sleep(ANNOUNCE_INTERVAL_SECONDS)


def _publish_fan_out() -> None:
    try:
        fan_out.delay()
    except Exception as error:  # any broker failure: nobody must fail for it
        logger.warning(
            "could not reach the broker; the sweep will deliver these events",
            extra={"error": type(error).__name__},
        )


announce = _Announcer()


@shared_task(name="jobs.tasks.fan_out")
def fan_out() -> int:
    """Make the deliveries of every event not yet fanned out, then send them."""
    made = 0
    while True:
        with transaction.atomic():
            events = Event.objects.filter(fanned_out=False).order_by("id")
            if connection.features.has_select_for_update_skip_locked:
                events = events.select_for_update(skip_locked=True)
            events = list(events.only("id", "type")[:FAN_OUT_BATCH])
            if not events:
                return made
            endpoints = list(WebhookEndpoint.objects.filter(is_active=True))
            WebhookDelivery.objects.bulk_create(
                [
                    WebhookDelivery(endpoint=endpoint, event=event)
                    for event in events
                    for endpoint in endpoints
                    if endpoint.wants(event.type)
                ],
                ignore_conflicts=True,
            )
            Event.objects.filter(pk__in=[e.pk for e in events]).update(fanned_out=True)
            ids = list(
                WebhookDelivery.objects.filter(
                    event__in=events, state=DeliveryState.PENDING
                ).values_list("pk", flat=True)
            )
            transaction.on_commit(lambda ids=ids: _send(ids))
        made += len(ids)


def _send(delivery_ids: list[int]) -> None:
    for delivery_id in delivery_ids:
        deliver.delay(delivery_id)


@shared_task(name="jobs.tasks.deliver")
def deliver(delivery_id: int) -> str | None:
    return webhooks.attempt(delivery_id)


@shared_task(name="jobs.tasks.sweep")
def sweep() -> int:
    """Periodic (Celery beat): events not fanned out, and deliveries due whose message was lost,
    whose worker died holding them, or whose retry time has come."""
    try:
        return _sweep()
    except DATABASE_UNAVAILABLE as error:
        # The next sweep will find everything this one could not: a warning, not a traceback.
        logger.warning("sweep skipped: database unavailable", extra={"error": type(error).__name__})
        return 0


def _sweep() -> int:
    fan_out()
    now = timezone.now()
    due = list(
        WebhookDelivery.objects.filter(state=DeliveryState.PENDING, next_attempt_at__lte=now)
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    _send(due)
    return len(due)


@shared_task(name="jobs.tasks.prune")
def prune() -> int:
    """Daily (Celery beat): what the outbox no longer needs (jobs.retention)."""
    pruned = prune_outbox()
    logger.info(
        "outbox pruned",
        extra={
            "events": pruned.events,
            "deliveries": pruned.deliveries,
            "idempotency_keys": pruned.idempotency_keys,
        },
    )
    return pruned.events + pruned.deliveries + pruned.idempotency_keys
