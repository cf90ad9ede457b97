"""Webhooks end to end: real Celery workers and beat on Redis, a real receiver on this machine,
PostgreSQL between them. Runs when DATABASE_URL points at PostgreSQL and REDIS_URL at Redis (CI
sets both); skipped otherwise."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from standardwebhooks.webhooks import Webhook

from jobs import tasks
from jobs.models import Channel, DeliveryState, Event, WebhookDelivery, WebhookEndpoint
from jobs.services import job_transition
from tests.factories import JobFactory, UserFactory
from tests.helpers import ON_POSTGRESQL
from tests.receiver import Receiver

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("REDIS_URL", "")
# A Redis database of its own, emptied first: no message from another run reaches these workers.
BROKER = REDIS_URL.rsplit("/", 1)[0] + "/7" if REDIS_URL else ""

pytestmark = [
    pytest.mark.skipif(
        not (ON_POSTGRESQL and REDIS_URL),
        reason="needs PostgreSQL and Redis: DATABASE_URL=postgres://… REDIS_URL=redis://…",
    ),
    pytest.mark.django_db(transaction=True),
]


def worker_env() -> dict[str, str]:
    database = django_settings.DATABASES["default"]
    return {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
            f"{database['NAME']}"  # the test database these tests write to
        ),
        "REDIS_URL": BROKER,
        "WEBHOOK_SWEEP_SECONDS": "0.5",
        "WEBHOOK_RETRY_BASE_SECONDS": "0.3",
        "WEBHOOK_TIMEOUT_SECONDS": "1",
        "WEBHOOK_LEASE_SECONDS": "2",
        "WEBHOOK_ALLOW_PRIVATE_URLS": "1",
        "LOG_LEVEL": "WARNING",
    }


class Processes:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.running: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *args: str) -> None:
        log = (self.tmp / f"{name}.log").open("a")
        self.running[name] = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", *args],
            env=worker_env(),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def worker(self) -> None:
        self.start("worker", "worker", "--pool", "threads", "--concurrency", "4", "-l", "INFO")

    def beat(self) -> None:
        self.start("beat", "beat", "-l", "INFO", "--schedule", str(self.tmp / "beat-schedule"))

    def kill(self, name: str) -> None:
        process = self.running.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def stop(self) -> None:
        for process in self.running.values():
            process.send_signal(signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def celery_on_redis(tmp_path):
    """Workers and beat on their own Redis database; this process publishes there too."""
    import redis

    from config.celery import app

    redis.Redis.from_url(BROKER).flushdb()
    app.conf.broker_url = BROKER
    app.pool.force_close_all()
    processes = Processes(tmp_path)
    yield processes
    processes.stop()
    app.conf.broker_url = "memory://"
    app.pool.force_close_all()


def wait_for(condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("waited in vain")


def start_a_job() -> Event:
    user = UserFactory(username="dispatcher", permissions=["start_progress_job"])
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
