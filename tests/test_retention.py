"""The outbox does not grow forever: old fanned-out events and finished deliveries are pruned in
batches; what is still owed to a receiver, and the transition log, stay."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from jobs.models import (
    DeliveryState,
    Event,
    IdempotencyKey,
    JobTransitionLog,
    WebhookDelivery,
    WebhookEndpoint,
)
from jobs.retention import prune_outbox
from jobs.services import job_transition
from tests.factories import JobFactory, UserFactory
from tests.helpers import run_command

pytestmark = pytest.mark.django_db

OLD = timezone.now() - timedelta(days=settings.JOBS_OUTBOX_RETENTION_DAYS + 1)


def event(*, old=True, fanned_out=True, delivery=None, endpoint=None):
    made = Event.objects.create(
        type="job.started",
        timestamp=OLD if old else timezone.now(),
        data={},
        fanned_out=fanned_out,
    )
    if delivery is not None:
        WebhookDelivery.objects.create(
            endpoint=endpoint,
            event=made,
            state=delivery,
            created_at=OLD if old else timezone.now(),
        )
    return made


def test_old_fanned_out_events_and_finished_deliveries_are_pruned_and_the_rest_kept(db):
    endpoint = WebhookEndpoint.objects.create(url="https://receiver.example/hook")
    delivered = event(delivery=DeliveryState.SUCCEEDED, endpoint=endpoint)
    failed = event(delivery=DeliveryState.FAILED, endpoint=endpoint)
    owed = event(delivery=DeliveryState.PENDING, endpoint=endpoint)
    not_fanned_out = event(fanned_out=False)
    young = event(old=False, delivery=DeliveryState.SUCCEEDED, endpoint=endpoint)

    pruned = prune_outbox(batch_size=1)

    assert (pruned.events, pruned.deliveries) == (2, 2)
    kept = set(Event.objects.values_list("pk", flat=True))
    assert kept == {owed.pk, not_fanned_out.pk, young.pk}
    assert not Event.objects.filter(pk__in=[delivered.pk, failed.pk]).exists()
    assert WebhookDelivery.objects.filter(event=owed, state=DeliveryState.PENDING).exists()


def test_the_transition_log_is_never_pruned(dispatcher):
    job = JobFactory()
    job_transition(transition="start_progress", job=job, user=dispatcher, channel="api")
    Event.objects.update(timestamp=OLD, fanned_out=True)

    assert prune_outbox().events == 1
    assert JobTransitionLog.objects.filter(job=job).count() == 1


def test_the_command_prunes_or_only_counts_with_dry_run(db):
    event()
    code, out, _ = run_command("prune_outbox", "--dry-run")
    assert (code, Event.objects.count()) == (0, 1)
    assert "Would delete 1 events and 0 webhook deliveries" in out
    code, out, _ = run_command("prune_outbox")
    assert (code, Event.objects.count()) == (0, 0)
    assert "Deleted 1 events" in out


def test_beat_prunes_every_day():
    entry = settings.CELERY_BEAT_SCHEDULE["outbox-prune"]
    assert (entry["task"], entry["schedule"]) == ("jobs.tasks.prune", 24 * 3600.0)


@pytest.mark.parametrize(
    ("arguments", "says"),
    [(["--days", "-1"], "--days must be 0 or more."), (["--batch-size", "0"], "1 or more")],
)
def test_the_command_refuses_a_negative_age_or_an_empty_batch(db, arguments, says):
    JobFactory()
    code, out, err = run_command("prune_outbox", *arguments)
    assert (code, out) == (2, "")
    assert says in err


def test_idempotency_keys_are_pruned_once_they_no_longer_answer():
    user = UserFactory()
    old = IdempotencyKey.objects.create(
        user=user, key="old", fingerprint="x", claimed_at=timezone.now() - timedelta(hours=25)
    )
    fresh = IdempotencyKey.objects.create(user=user, key="fresh", fingerprint="x")

    assert prune_outbox().idempotency_keys == 1
    assert list(IdempotencyKey.objects.values_list("pk", flat=True)) == [fresh.pk]
    assert not IdempotencyKey.objects.filter(pk=old.pk).exists()
