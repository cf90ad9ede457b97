"""`Idempotency-Key` on the creates (ours): the same key from the same user with the same body
within 24 hours answers the first answer again and creates nothing.

The key is claimed first, in a statement of its own that commits at once: of concurrent requests
with one key (in any process), the database's unique constraint lets one through, and the others
answer IDEMPOTENCY_KEY_IN_USE. The winner's answer is written to its claim in the same
transaction as the job it made, so a job never exists without its answer stored: a request that
dies before it commits leaves neither, and its claim is taken over once LEASE has passed. A
refusal is an answer too, stored in its own transaction. An unexpected error frees the key.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from jobs.api.envelope import error_response
from jobs.api.words import say
from jobs.exceptions import IdempotencyKeyInUse, IdempotencyKeyReused, InvalidParameter, JobsError
from jobs.models import IdempotencyKey

HEADER = "Idempotency-Key"
KEEP = IdempotencyKey.KEEP
# A claim whose request has not answered in this time died with it (nothing of it committed).
LEASE = timedelta(seconds=60)
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")


def idempotent(request: Request, make: Callable[[], Response]) -> Response | HttpResponse:
    """`make()`'s answer, once per key (when the request carries one)."""
    key = request.headers.get(HEADER)
    if key is None:
        return make()
    if not KEY_PATTERN.match(key):
        raise InvalidParameter(
            f"{HEADER} must be 1 to 255 visible ASCII characters.",
            "Send a unique id per operation, such as a UUID.",
        )
    claim = _claim(request.user, key, _fingerprint(request))
    if claim.status_code is not None:
        replay = HttpResponse(
            claim.answer, status=claim.status_code, content_type="application/json"
        )
        replay["Idempotent-Replayed"] = "true"
        return replay
    try:
        with transaction.atomic():
            answer = make()
            _keep(claim, answer.status_code, answer.data)
    except JobsError as refusal:
        refused = error_response(refusal.code, *say(refusal))
        with transaction.atomic():
            _keep(claim, refused.status_code, refused.data)
        raise
    except BaseException:
        IdempotencyKey.objects.filter(pk=claim.pk).delete()
        raise
    return answer


def _fingerprint(request: Request) -> str:
    """The request as a key must find it again: its method, path and body (a token in the body
    aside: a client may log in again between its attempts)."""
    body = request.data if isinstance(request.data, dict) else {"": request.data}
    body = {name: value for name, value in body.items() if name != "token"}
    text = json.dumps([request.method, request.path, body], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _claim(user: Any, key: str, fingerprint: str) -> IdempotencyKey:
    """The key's row: a new claim (no answer yet), or the answer to give again."""
    for _attempt in range(3):
        now = timezone.now()
        try:
            with transaction.atomic():
                return IdempotencyKey.objects.create(
                    user=user, key=key, fingerprint=fingerprint, claimed_at=now
                )
        except IntegrityError:
            pass
        held = IdempotencyKey.objects.filter(user=user, key=key).first()
        if held is None:
            continue  # freed meanwhile: claim it again
        if held.claimed_at < now - KEEP:
            IdempotencyKey.objects.filter(pk=held.pk, claimed_at=held.claimed_at).delete()
            continue  # expired: the key is new again
        if held.fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                f"{HEADER} {key!r} was used with another request.",
                "Send a new key for a new request.",
            )
        if held.status_code is not None:
            return held
        stale = held.claimed_at < now - LEASE
        if stale and IdempotencyKey.objects.filter(
            pk=held.pk, status_code__isnull=True, claimed_at=held.claimed_at
        ).update(claimed_at=now):
            held.claimed_at = now
            return held  # its first request died: this one takes over
        raise IdempotencyKeyInUse(
            f"A request with {HEADER} {key!r} is still running.",
            "Retry in a moment: you will get its answer.",
        )
    raise IdempotencyKeyInUse(
        f"{HEADER} {key!r} is changing hands.", "Retry in a moment: you will get its answer."
    )


def _keep(claim: IdempotencyKey, status_code: int, data: Any) -> None:
    """The answer, as it is sent, on the claim."""
    claim.status_code, claim.answer = status_code, JSONRenderer().render(data).decode()
    claim.save(update_fields=["status_code", "answer"])
