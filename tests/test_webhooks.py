"""Webhooks, one attempt at a time (the worker's code, called directly): fan-out, the Standard
Webhooks signature, retries with growing delays, the timeout, what a bad receiver or a bad URL
gets, and the sweep."""

import json
import threading
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from jobs import tasks, webhooks
from jobs.models import Channel, DeliveryState, Event, WebhookDelivery, WebhookEndpoint
from jobs.services import job_transition
from tests.factories import JobFactory
from tests.receiver import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def local_receivers_allowed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    settings.WEBHOOK_RETRY_BASE_SECONDS = 30


@pytest.fixture
def sent(monkeypatch):
    """The delivery ids the code hands to the broker (the memory broker keeps them otherwise)."""
    ids: list[int] = []
    monkeypatch.setattr(tasks.deliver, "delay", ids.append)
    return ids


def a_started_job(dispatcher) -> Event:
    job_transition(
        transition="start_progress", job=JobFactory(), user=dispatcher, channel=Channel.API
    )
    return Event.objects.latest("id")


def delivery_to(receiver_url, dispatcher, **endpoint) -> WebhookDelivery:
    WebhookEndpoint.objects.create(url=receiver_url, **endpoint)
    a_started_job(dispatcher)
    tasks.fan_out()
    return WebhookDelivery.objects.get()


def due_now(delivery: WebhookDelivery) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())


# --- fan-out --------------------------------------------------------------------------------


def test_each_event_goes_to_every_active_endpoint_that_wants_its_type(
    dispatcher, sent, django_capture_on_commit_callbacks
):
    everything = WebhookEndpoint.objects.create(url="http://a.example/")
    starts = WebhookEndpoint.objects.create(url="http://b.example/", event_types=["job.started"])
    WebhookEndpoint.objects.create(url="http://c.example/", event_types=["job.cancelled"])
    WebhookEndpoint.objects.create(url="http://d.example/", is_active=False)
    event = a_started_job(dispatcher)

    with django_capture_on_commit_callbacks(execute=True):
        tasks.fan_out()
        tasks.fan_out()  # again: nothing more

    deliveries = WebhookDelivery.objects.filter(event=event)
    assert {d.endpoint for d in deliveries} == {everything, starts}
    assert sorted(sent) == sorted(d.pk for d in deliveries)
    assert Event.objects.get(pk=event.pk).fanned_out


# --- one attempt --------------------------------------------------------------------------------


def test_a_2xx_succeeds_and_the_signature_verifies_with_the_standard_library(dispatcher):
    with Receiver(204) as receiver:
        delivery = delivery_to(receiver.url, dispatcher)
        assert webhooks.attempt(delivery.pk) == "succeeded"
    (got,) = receiver.received
    secret = delivery.endpoint.secret
    assert secret.startswith("whsec_")
    body = json.loads(Webhook(secret).verify(got["body"], got["headers"]) and got["body"])
    assert body == {
        "type": "job.started",
        "timestamp": body["timestamp"],
        "data": delivery.event.data,
    }
    assert got["headers"]["webhook-id"] == delivery.event.public_id
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43).verify(got["body"], got["headers"])
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == ("succeeded", 1, 204)


@pytest.mark.parametrize(
    "answer", [500, 404, 301, "redirect", "close", "garbage", "big", ("hang", 3)]
)
def test_anything_but_a_2xx_in_time_is_recorded_and_tried_again_later(dispatcher, answer):
    with Receiver(answer) as receiver:
        delivery = delivery_to(receiver.url, dispatcher)
        began = timezone.now()
        assert webhooks.attempt(delivery.pk) == "retrying"
        took = timezone.now() - began
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == (DeliveryState.PENDING, 1)
    assert delivery.last_status_code or delivery.last_error
    assert len(delivery.last_error) <= 500  # a 5 MB answer is not kept
    assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=20)
    assert delivery.leased_until is None
    assert took < timedelta(seconds=2.5)  # a hanging receiver is cut at the timeout


def test_the_delays_grow_and_the_delivery_fails_after_the_retry_window(dispatcher, settings):
    with Receiver(500) as receiver:
        delivery = delivery_to(receiver.url, dispatcher)
        waits = []
        for _ in range(4):
            before = timezone.now()
            webhooks.attempt(delivery.pk)
            delivery.refresh_from_db()
            waits.append((delivery.next_attempt_at - before).total_seconds())
            due_now(delivery)
        assert waits[0] < waits[1] < waits[2] < waits[3]
        settings.WEBHOOK_RETRY_FOR_SECONDS = 0
        assert webhooks.attempt(delivery.pk) == "failed"
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("failed", 5)
    assert webhooks.attempt(delivery.pk) is None  # failed is final until resent
    webhooks.resend(WebhookDelivery.objects.filter(pk=delivery.pk))
    delivery.refresh_from_db()
    assert delivery.state == "pending"


def test_a_delivery_held_by_another_worker_is_not_attempted_twice(dispatcher):
    with Receiver(200) as receiver:
        delivery = delivery_to(receiver.url, dispatcher)
        assert webhooks.claim(delivery.pk) is not None
        assert webhooks.attempt(delivery.pk) is None
        assert receiver.received == []


def test_the_sweep_sends_what_is_due_and_not_held(dispatcher, sent):
    with Receiver(200) as receiver:
        delivery = delivery_to(receiver.url, dispatcher)
    sent.clear()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        leased_until=timezone.now() - timedelta(seconds=1)  # its worker died holding it
    )
    assert tasks.sweep() == 1
    assert sent == [delivery.pk]
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() + timedelta(hours=1)
    )
    assert tasks.sweep() == 0


def test_an_event_whose_announcement_was_lost_is_found_by_the_sweep(dispatcher, sent):
    WebhookEndpoint.objects.create(url="http://a.example/")
    event = a_started_job(dispatcher)  # its on_commit message never fires in this test
    tasks.sweep()
    assert WebhookDelivery.objects.filter(event=event).count() == 1
    assert len(sent) == 1


def test_a_broker_that_is_down_at_commit_loses_nothing(
    dispatcher, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    def down():
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.fan_out, "delay", down)
    with django_capture_on_commit_callbacks(execute=True):
        event = a_started_job(dispatcher)
    assert tasks.announce.flush()
    assert Event.objects.filter(pk=event.pk, fanned_out=False).exists()
    assert any("sweep will deliver" in r.getMessage() for r in caplog.records)


def test_a_transition_does_not_wait_for_the_broker(
    dispatcher, monkeypatch, django_capture_on_commit_callbacks
):
    reached, release, sent = threading.Event(), threading.Event(), []

    def slow_broker():
        reached.set()
        release.wait(5)
        sent.append(True)

    monkeypatch.setattr(tasks.fan_out, "delay", slow_broker)
    with django_capture_on_commit_callbacks(execute=True):
        a_started_job(dispatcher)
    assert reached.wait(5)  # the message is on its way, and the transition has returned
    assert sent == []
    release.set()
    assert tasks.announce.flush()
    assert sent == [True]


# --- addresses --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "http:///no-host",
        "https://example.com/" + "x" * 2000,
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
    ],
)
def test_with_debug_off_urls_that_are_not_http_or_point_inside_the_network_are_refused(
    settings, url
):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    with pytest.raises(ValidationError):
        webhooks.check_endpoint(WebhookEndpoint(url=url))


def test_an_address_refused_at_delivery_time_is_a_recorded_failure_without_a_request(
    dispatcher, settings
):
    with Receiver(200) as receiver:
        delivery = delivery_to(receiver.url, dispatcher)
        settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
        assert webhooks.attempt(delivery.pk) == "retrying"
        assert receiver.received == []
    delivery.refresh_from_db()
    assert "inside the network" in delivery.last_error


def test_unknown_event_types_are_refused():
    with pytest.raises(ValidationError):
        webhooks.check_endpoint(
            WebhookEndpoint(url="https://example.com/", event_types=["job.exploded"])
        )


# --- the admin ---------------------------------------------------------------------------------


@pytest.fixture
def as_admin(client):
    from tests.factories import UserFactory

    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def test_a_new_endpoint_shows_its_secret_once_then_only_a_hint(as_admin):
    from django.contrib.messages import get_messages

    response = as_admin.post(
        "/admin/jobs/webhookendpoint/add/",
        {"url": "https://receiver.example/hook", "event_types": ["job.started"], "is_active": "on"},
        follow=True,
    )
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.event_types == ["job.started"]
    shown = " ".join(m.message for m in get_messages(response.wsgi_request))
    assert endpoint.secret in shown
    page = as_admin.get(f"/admin/jobs/webhookendpoint/{endpoint.pk}/change/").content.decode()
    assert endpoint.secret not in page
    assert endpoint.secret[:10] in page


def test_the_admin_refuses_an_endpoint_inside_the_network_with_debug_off(as_admin, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    response = as_admin.post(
        "/admin/jobs/webhookendpoint/add/", {"url": "http://127.0.0.1:9/hook", "is_active": "on"}
    )
    assert response.status_code == 200
    assert "inside the network" in str(response.context["adminform"].form.errors)
    assert not WebhookEndpoint.objects.exists()


def test_send_a_test_event_and_resend_from_the_admin(
    as_admin, dispatcher, sent, django_capture_on_commit_callbacks
):
    endpoint = WebhookEndpoint.objects.create(url="https://receiver.example/hook")
    with django_capture_on_commit_callbacks(execute=True):
        as_admin.post(
            "/admin/jobs/webhookendpoint/",
            {"action": "send_test_event", "_selected_action": [endpoint.pk]},
        )
    (delivery,) = WebhookDelivery.objects.all()
    assert delivery.event.type == "webhook.test"
    assert sent == [delivery.pk]
    WebhookDelivery.objects.update(state=DeliveryState.FAILED)

    listing = as_admin.get("/admin/jobs/webhookdelivery/?state__exact=failed")
    assert listing.context["cl"].result_count == 1
    with django_capture_on_commit_callbacks(execute=True):
        as_admin.post(
            "/admin/jobs/webhookdelivery/", {"action": "resend", "_selected_action": [delivery.pk]}
        )
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.PENDING
    assert sent == [delivery.pk, delivery.pk]


def test_a_sweep_that_finds_the_database_gone_warns_and_waits_for_the_next(monkeypatch, caplog):
    from django.db import OperationalError

    def gone():
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(tasks.webhooks, "fan_out", gone)
    assert tasks.sweep() == 0
    assert any("database unavailable" in r.getMessage() for r in caplog.records)
