"""How long the outbox keeps what it no longer needs: events already fanned out, and webhook
deliveries that are finished (succeeded, or failed for good), once older than the retention; and
the creates' idempotency keys once they no longer answer (IdempotencyKey.KEEP, 24 hours).

The transition log is the audit trail and is never pruned here. Rows go in small batches, each its
own short transaction, so pruning a million rows never holds a long lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone

from jobs.models import DeliveryState, Event, IdempotencyKey, WebhookDelivery

FINISHED = (DeliveryState.SUCCEEDED, DeliveryState.FAILED)


@dataclass(frozen=True)
class Pruned:
    deliveries: int
    events: int
    idempotency_keys: int


def _in_batches(ids_query, model, batch_size: int, dry_run: bool) -> int:
    """Delete the rows `ids_query` selects, `batch_size` at a time; return how many."""
    if dry_run:
        return ids_query.count()
    gone = 0
    while ids := list(ids_query[:batch_size]):
        model.objects.filter(pk__in=ids).delete()
        gone += len(ids)
    return gone


def prune_outbox(
    *, older_than: timedelta | None = None, batch_size: int = 1000, dry_run: bool = False
) -> Pruned:
    """Delete finished deliveries and fanned-out events older than `older_than` (default:
    JOBS_OUTBOX_RETENTION_DAYS). An event still waiting on a delivery is kept with it."""
    cutoff = timezone.now() - (
        older_than
        if older_than is not None
        else timedelta(days=settings.JOBS_OUTBOX_RETENTION_DAYS)
    )
    deliveries = (
        WebhookDelivery.objects.filter(state__in=FINISHED, created_at__lt=cutoff)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    pruned_deliveries = _in_batches(deliveries, WebhookDelivery, batch_size, dry_run)
    unfinished = WebhookDelivery.objects.filter(event=OuterRef("pk")).exclude(state__in=FINISHED)
    events = (
        Event.objects.filter(fanned_out=True, timestamp__lt=cutoff)
        .filter(~Exists(unfinished))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    pruned_events = _in_batches(events, Event, batch_size, dry_run)
    expired = (
        IdempotencyKey.objects.filter(claimed_at__lt=timezone.now() - IdempotencyKey.KEEP)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    pruned_keys = _in_batches(expired, IdempotencyKey, batch_size, dry_run)
    return Pruned(pruned_deliveries, pruned_events, pruned_keys)
