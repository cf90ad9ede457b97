"""Pushing events to webhook endpoints, the Standard Webhooks way, one attempt at a time.

An attempt is made by a worker (jobs.tasks), never by the request that made the transition. It
claims the delivery with a lease, POSTs `{"type", "timestamp", "data"}` signed with the endpoint's
secret (headers webhook-id, webhook-timestamp, webhook-signature), reads at most a small part of
the answer, and records the outcome: a 2xx within the timeout is success; anything else is tried
again later with growing, jittered delays until WEBHOOK_RETRY_FOR_SECONDS have passed, then the
delivery has failed (and can be resent from the admin).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import random
import socket
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from jobs.events import EVENT_TYPES
from jobs.metrics import WEBHOOK_DELIVERIES
from jobs.models import DeliveryState, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

MAX_URL_LENGTH = 2000
# What is read of a receiver's answer: enough for an error message, never a flood.
MAX_ANSWER_BYTES = 64 * 1024
MAX_DELAY_SECONDS = 3600
_http = urllib3.PoolManager(retries=False, maxsize=16, block=False)


class Refused(Exception):
    """The endpoint's address may not be called; the attempt fails without a request."""


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return not ip.is_global or ip.is_loopback or ip.is_link_local or ip.is_private


def check_url(url: str) -> None:
    """Refuse what no delivery should call: not http(s), too long, no host, or (with DEBUG off and
    WEBHOOK_ALLOW_PRIVATE_URLS unset) a host that resolves inside the network."""
    if len(url) > MAX_URL_LENGTH:
        raise Refused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused("the URL must be http:// or https:// with a host")
    if settings.DEBUG or settings.WEBHOOK_ALLOW_PRIVATE_URLS:
        return
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or 443)}
    except OSError as error:
        raise Refused(f"the host does not resolve ({error})") from None
    inside = sorted(a for a in addresses if _private(a.split("%")[0]))
    if inside:
        raise Refused(
            f"the host resolves to {', '.join(inside)}, inside the network "
            "(set WEBHOOK_ALLOW_PRIVATE_URLS=1 to allow it)"
        )


def check_endpoint(endpoint: WebhookEndpoint) -> None:
    """The admin form's validation: the URL is callable and the event types exist."""
    try:
        check_url(endpoint.url)
    except Refused as refused:
        raise ValidationError({"url": str(refused)}) from None
    types = endpoint.event_types
    if not isinstance(types, list) or any(t not in EVENT_TYPES for t in types):
        raise ValidationError(
            {"event_types": f"A list of event types, some of: {', '.join(EVENT_TYPES)}."}
        )


def payload_of(delivery: WebhookDelivery) -> str:
    event = delivery.event
    return json.dumps(
        {
            "type": event.type,
            "timestamp": event.timestamp.isoformat().replace("+00:00", "Z"),
            "data": event.data,
        },
        separators=(",", ":"),
    )


def signed_headers(delivery: WebhookDelivery, payload: str) -> dict[str, str]:
    now = timezone.now()
    signature = Webhook(delivery.endpoint.secret).sign(delivery.event.public_id, now, payload)
    return {
        "content-type": "application/json",
        "user-agent": "jobs-webhooks/1",
        "webhook-id": delivery.event.public_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }


def delay_after(attempts: int) -> float:
    """Seconds before the next attempt: doubling from the base, capped at an hour, jittered by
    ±25% so that many failed deliveries do not return at the same instant."""
    base = min(settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** (attempts - 1), MAX_DELAY_SECONDS)
    return base * random.uniform(0.75, 1.25)


def claim(delivery_id: int) -> WebhookDelivery | None:
    """Take the delivery for one attempt, unless it is done, not yet due, or held by another
    worker whose lease has not run out."""
    now = timezone.now()
    claimed = (
        WebhookDelivery.objects.filter(
            pk=delivery_id, state=DeliveryState.PENDING, next_attempt_at__lte=now
        )
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
        .update(leased_until=now + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS))
    )
    if not claimed:
        return None
    return WebhookDelivery.objects.select_related("endpoint", "event").get(pk=delivery_id)


def post(delivery: WebhookDelivery) -> tuple[bool, int | None, str]:
    """One POST: (success, HTTP status or None, what went wrong)."""
    endpoint = delivery.endpoint
    if not endpoint.is_active:
        return False, None, "the endpoint is not active"
    try:
        check_url(endpoint.url)
    except Refused as refused:
        return False, None, f"refused: {refused}"
    payload = payload_of(delivery)
    try:
        response = _http.request(
            "POST",
            endpoint.url,
            body=payload.encode(),
            headers=signed_headers(delivery, payload),
            timeout=urllib3.Timeout(total=settings.WEBHOOK_TIMEOUT_SECONDS),
            redirect=False,
            preload_content=False,
        )
    except urllib3.exceptions.HTTPError as error:
        return False, None, f"{type(error).__name__}: {error}"[:500]
    try:
        answer = response.read(MAX_ANSWER_BYTES, decode_content=False)
    except urllib3.exceptions.HTTPError as error:
        answer = f"(answer unreadable: {type(error).__name__})".encode()
    finally:
        response.release_conn()
    if 200 <= response.status < 300:
        return True, response.status, ""
    return False, response.status, answer[:500].decode("utf-8", "replace")


def attempt(delivery_id: int) -> str | None:
    """Make one attempt if the delivery is due and free; return its outcome."""
    delivery = claim(delivery_id)
    if delivery is None:
        return None
    succeeded, status, error = post(delivery)
    now = timezone.now()
    delivery.attempts += 1
    delivery.last_status_code = status
    delivery.last_error = error
    delivery.leased_until = None
    if succeeded:
        delivery.state, delivery.delivered_at, outcome = DeliveryState.SUCCEEDED, now, "succeeded"
    elif (now - delivery.event.timestamp).total_seconds() >= settings.WEBHOOK_RETRY_FOR_SECONDS:
        delivery.state, outcome = DeliveryState.FAILED, "failed"
    else:
        delivery.next_attempt_at = now + timedelta(seconds=delay_after(delivery.attempts))
        outcome = "retrying"
    delivery.save(
        update_fields=[
            "attempts",
            "last_status_code",
            "last_error",
            "leased_until",
            "state",
            "delivered_at",
            "next_attempt_at",
        ]
    )
    WEBHOOK_DELIVERIES.labels(outcome).inc()
    logger.info(
        "webhook attempt",
        extra={
            "delivery": delivery.pk,
            "event": delivery.event.public_id,
            "endpoint": delivery.endpoint_id,
            "attempt": delivery.attempts,
            "outcome": outcome,
            "status": status,
        },
    )
    return outcome


def resend(deliveries: Any) -> int:
    """Make deliveries due again now (the admin's "resend")."""
    return deliveries.update(
        state=DeliveryState.PENDING, next_attempt_at=timezone.now(), leased_until=None
    )
