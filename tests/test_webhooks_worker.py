"""Webhooks end to end: real Celery workers and beat on Redis, a real receiver on this machine,
PostgreSQL between them. Runs when DATABASE_URL points at PostgreSQL and REDIS_URL at Redis (CI
sets both); skipped otherwise."""

from __future__ import annotations

import json
import time

from standardwebhooks.webhooks import Webhook

from jobs import tasks
from jobs.models import Channel, DeliveryState, Event, WebhookDelivery, WebhookEndpoint
from jobs.services import job_transition
from tests.factories import JobFactory, UserFactory
from tests.receiver import Receiver
from tests.workers import needs_workers, wait_for

pytestmark = needs_workers


def start_a_job() -> Event:
    user = UserFactory(username="dispatcher", permissions=["view_all_jobs", "start_progress_job"])
    job_transition(transition="start_progress", job=JobFactory(), user=user, channel=Channel.API)
    return Event.objects.latest("id")


def test_a_receiver_that_fails_twice_gets_the_event_on_the_third_attempt(celery_on_redis):
    celery_on_redis.worker()
    celery_on_redis.beat()
    with Receiver(500, 500, 200) as receiver:
        endpoint = WebhookEndpoint.objects.create(url=receiver.url)
        event = start_a_job()
        wait_for(lambda: WebhookDelivery.objects.filter(state=DeliveryState.SUCCEEDED).exists())
    assert receiver.ids() == [event.public_id] * 3
    delivery = WebhookDelivery.objects.get()
    assert (delivery.attempts, delivery.last_status_code) == (3, 200)
    last = receiver.received[-1]
    body = json.loads(
        Webhook(endpoint.secret).verify(last["body"], last["headers"]) and last["body"]
    )
    assert body["data"]["job"]["number"] == event.data["job"]["number"]


def test_a_hanging_receiver_is_cut_at_the_timeout_and_retried(celery_on_redis):
    celery_on_redis.worker()
    celery_on_redis.beat()
    with Receiver(("hang", 5), 200) as receiver:
        WebhookEndpoint.objects.create(url=receiver.url)
        began = time.monotonic()
        start_a_job()
        wait_for(lambda: WebhookDelivery.objects.filter(state=DeliveryState.SUCCEEDED).exists())
        took = time.monotonic() - began
    delivery = WebhookDelivery.objects.get()
    assert delivery.attempts == 2
    assert took < 5  # the second attempt did not wait for the first to hang up


def test_a_worker_killed_mid_delivery_loses_nothing(celery_on_redis):
    celery_on_redis.worker()
    celery_on_redis.beat()
    with Receiver(("hang", 60), 200) as receiver:
        WebhookEndpoint.objects.create(url=receiver.url)
        event = start_a_job()
        wait_for(lambda: len(receiver.received) == 1)  # the worker is inside the POST
        celery_on_redis.kill("worker")
        celery_on_redis.worker()  # a new one; the sweep hands it the delivery once the lease ends
        wait_for(lambda: WebhookDelivery.objects.filter(state=DeliveryState.SUCCEEDED).exists())
    assert receiver.ids() == [event.public_id, event.public_id]


def test_a_broker_that_is_down_at_commit_loses_nothing(celery_on_redis, caplog):
    from config.celery import app

    with Receiver(200) as receiver:
        WebhookEndpoint.objects.create(url=receiver.url)
        app.conf.broker_url = "redis://127.0.0.1:1/0"  # nobody there
        app.pool.force_close_all()
        event = start_a_job()
        assert tasks.announce.flush()
        assert any("sweep will deliver" in r.getMessage() for r in caplog.records)
        celery_on_redis.worker()
        celery_on_redis.beat()
        wait_for(lambda: receiver.ids() == [event.public_id])
