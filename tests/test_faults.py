"""Faults from outside: a client that goes away mid-request. (A database failing mid-batch is in
test_transitions.py and test_command.py: the batch rolls back whole and a re-run finishes.)"""

import json
import socket
import time
from urllib.parse import urlparse

import pytest
from django.db import connection
from django.db.models import Count
from rest_framework_simplejwt.tokens import SlidingToken

from jobs.models import Job, LifeCycleState
from tests.factories import AssignmentFactory, JobFactory, UserFactory
from tests.helpers import by_identifier_url

pytestmark = pytest.mark.django_db(transaction=True)

START = by_identifier_url("start_progress")
SHARES_THE_SERVERS_CONNECTION = connection.vendor == "sqlite" and connection.is_in_memory_db()


def send_and_hang_up(live_server, body: bytes, send_bytes: int | None = None) -> None:
    """Send a start request (or its first `send_bytes` bytes) and close before any answer."""
    address = urlparse(live_server.url)
    head = (
        f"POST {START} HTTP/1.1\r\nHost: {address.hostname}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    request = head + body
    with socket.create_connection((address.hostname, address.port), timeout=5) as connection:
        connection.sendall(request[: len(head) + send_bytes] if send_bytes is not None else request)
        connection.shutdown(socket.SHUT_RDWR)


def whole_or_untouched(job: Job, wait: float = 5.0) -> str:
    """Wait for the server to settle the job; fail on any half-applied state."""
    deadline = time.monotonic() + wait
    while True:
        # One statement, so the state and the log rows are read from the same snapshot.
        ((state, logs),) = (
            Job.objects.filter(pk=job.pk)
            .annotate(logs=Count("transitions"))
            .values_list("life_cycle_state", "logs")
        )
        whole = (state, logs) in {(LifeCycleState.PENDING, 0), (LifeCycleState.IN_PROGRESS, 1)}
        if not whole and SHARES_THE_SERVERS_CONNECTION and time.monotonic() <= deadline:
            # Django's live server uses the test's own connection to an in-memory SQLite
            # database, so this read may land inside the server's open transaction: read again.
            time.sleep(0.05)
            continue
        # a start and its log row are one transaction: never one without the other
        assert (state, logs) in {(LifeCycleState.PENDING, 0), (LifeCycleState.IN_PROGRESS, 1)}
        if state == LifeCycleState.IN_PROGRESS or time.monotonic() > deadline:
            return state
        time.sleep(0.05)


@pytest.fixture
def body():
    user = UserFactory(username="field-app", permissions=["start_progress_job"])
    job = JobFactory()
    AssignmentFactory(job=job, user=user, unit=None)  # the field app's own job
    token = str(SlidingToken.for_user(user))
    return job, json.dumps({"token": token, "job_identifier": {"number": job.number}}).encode()


def test_a_client_that_hangs_up_after_sending_leaves_the_job_started_with_its_log(
    live_server, body
):
    job, payload = body
    send_and_hang_up(live_server, payload)
    assert whole_or_untouched(job) == LifeCycleState.IN_PROGRESS


def test_a_client_that_hangs_up_mid_body_leaves_the_job_untouched(live_server, body):
    job, payload = body
    send_and_hang_up(live_server, payload, send_bytes=len(payload) // 2)
    assert whole_or_untouched(job, wait=1.0) == LifeCycleState.PENDING
