"""Jobs from outside, at once: sixteen creates with one Idempotency-Key make one job; concurrent
updates of different fields all keep their change; of concurrent updates sent with one If-Match,
one is made and the others answer 412. In one process (threads, each with its own connection) and
under gunicorn with four worker processes. PostgreSQL only: SQLite's writers take turns, which
would prove nothing."""

import itertools
import json
import secrets
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import psycopg
import pytest
from django.db import connection
from django.test import Client
from rest_framework_simplejwt.tokens import SlidingToken

from jobs.models import Event, Job, JobUpdate
from tests.factories import GroupFactory, JobFactory, JobTypeFactory, UserFactory
from tests.helpers import JOBS, LOGIN, requires_postgresql
from tests.test_concurrency import run_at_once
from tests.test_production import BIN, ROOT, Served, create_user, production_env, request

pytestmark = requires_postgresql
BODY = {"type_identifier": {"alternative_code": "REPAIR"}, "description": "once"}
# Six updates of one job, each of another field.
EACH_FIELD = [
    {"description": "new description"},
    {"notes": "new notes"},
    {"scheduled_date": "2026-12-24T09:00:00Z"},
    {"external_reference": "ERP-7"},
    {"owned_by_group_identifier": {"name": "South field team"}},
    {"assigned_to": {"user_identifier": {"username": "shop"}}},
]
KEPT = {
    "description": "new description",
    "notes": "new notes",
    "scheduled_date": "2026-12-24T09:00:00Z",
    "external_reference": "ERP-7",
    "owned_by_group.name": "South field team",
    "assigned_to.user.username": "shop",
}


def shown(data: dict, path: str):
    for part in path.split("."):
        data = data[part]
    return data


@pytest.mark.django_db(transaction=True)
def test_sixteen_threads_with_one_key_create_one_job():
    JobTypeFactory(alternative_code="REPAIR")
    user = UserFactory(permissions=["view_job", "add_job"], groups=[GroupFactory()])
    token = str(SlidingToken.for_user(user))

    def post(_):
        client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_IDEMPOTENCY_KEY="order-1042")
        response = client.post(JOBS, BODY, content_type="application/json")
        return response.status_code, response.content

    answers = run_at_once(16, post)

    made = [content for code, content in answers if code == 201]
    assert Job.objects.count() == 1
    assert Event.objects.count() == 1
    assert len(set(made)) == 1  # the first answer, and the same one again to every replay
    assert {code for code, _ in answers} <= {201, 409}


@pytest.mark.django_db(transaction=True)
def test_concurrent_updates_of_different_fields_are_all_kept():
    GroupFactory(name="South field team")
    user = UserFactory(username="shop", permissions=["view_job", "view_all_jobs", "change_job"])
    job = JobFactory()
    token = str(SlidingToken.for_user(user))

    def patch(i):
        client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client.patch(f"{JOBS}/{job.pk}", EACH_FIELD[i], content_type="application/json")

    answers = run_at_once(len(EACH_FIELD), patch)

    assert [answer.status_code for answer in answers] == [200] * len(EACH_FIELD)
    data = Client(HTTP_AUTHORIZATION=f"Bearer {token}").get(f"{JOBS}/{job.pk}").json()["data"]
    assert {path: shown(data, path) for path in KEPT} == KEPT
    job.refresh_from_db()
    assert job.version == 1 + len(EACH_FIELD)
    assert JobUpdate.objects.count() == Event.objects.count() == len(EACH_FIELD)


@pytest.mark.django_db(transaction=True)
def test_concurrent_updates_of_one_field_are_each_recorded_from_what_the_one_before_left():
    units = [GroupFactory(name=f"Unit {i}") for i in range(8)]
    user = UserFactory(permissions=["view_job", "view_all_jobs", "change_job"])
    job = JobFactory()
    token = str(SlidingToken.for_user(user))

    def patch(i):
        client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
        body = {
            "assigned_to": {"unit_identifier": {"id": units[i].pk}},
            "owned_by_group_identifier": {"id": units[i].pk},
        }
        return client.patch(f"{JOBS}/{job.pk}", body, content_type="application/json")

    answers = run_at_once(len(units), patch)

    assert [answer.status_code for answer in answers] == [200] * len(units)
    records = list(JobUpdate.objects.order_by("id"))
    # One after another: each update starts from what the one before it left.
    for before, after in itertools.pairwise(records):
        for field in ("assigned_to", "owned_by_group"):
            assert after.changes[field]["from"] == before.changes[field]["to"]
    assert records[0].changes["assigned_to"]["from"] is None
    job.refresh_from_db()
    assert job.owned_by_group.pk == records[-1].changes["owned_by_group"]["to"]["id"]
    assert job.assigned_to.unit.pk == records[-1].changes["assigned_to"]["to"]["unit"]["id"]


@pytest.mark.django_db(transaction=True)
def test_of_sixteen_updates_with_one_if_match_one_is_made():
    user = UserFactory(permissions=["view_job", "view_all_jobs", "change_job"])
    job = JobFactory()
    token = str(SlidingToken.for_user(user))
    etag = Client(HTTP_AUTHORIZATION=f"Bearer {token}").get(f"{JOBS}/{job.pk}").headers["ETag"]

    def patch(i):
        client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_IF_MATCH=etag)
        body = {"notes": f"writer {i}"}
        return client.patch(f"{JOBS}/{job.pk}", body, content_type="application/json")

    answers = run_at_once(16, patch)

    assert Counter(answer.status_code for answer in answers) == {200: 1, 412: 15}
    (made,) = [answer for answer in answers if answer.status_code == 200]
    job.refresh_from_db()
    assert job.notes == made.json()["data"]["notes"]
    assert JobUpdate.objects.count() == 1


@pytest.fixture
def scratch_database():
    """A database of its own for a server in other processes, dropped afterwards."""
    name = f"jobs_intake_{secrets.token_hex(4)}"
    settings_dict = connection.settings_dict
    admin = psycopg.connect(
        host=settings_dict["HOST"],
        port=settings_dict["PORT"] or 5432,
        user=settings_dict["USER"],
        password=settings_dict["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )
    admin.execute(f'CREATE DATABASE "{name}"')
    user = settings_dict["USER"]
    yield f"postgres://{user}@{settings_dict['HOST']}:{settings_dict['PORT'] or 5432}/{name}"
    admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.close()


def manage_shell(env: dict[str, str], script: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v0", "-c", script],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def test_creates_and_updates_at_once_through_four_gunicorn_workers(tmp_path, scratch_database):
    env = production_env(tmp_path, DATABASE_URL=scratch_database, GUNICORN_WORKERS="4")
    create_user(
        env,
        "shop",
        "s3cret-Passw0rd-for-shop",
        *("view_job", "add_job", "change_job", "view_all_jobs"),
    )
    manage_shell(
        env,
        "from tests.factories import GroupFactory, JobTypeFactory\n"
        "JobTypeFactory(alternative_code='REPAIR')\nGroupFactory(name='South field team')",
    )
    server = Served(
        [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "config.wsgi"], env, tmp_path / "log"
    )
    try:
        login = json.dumps({"username": "shop", "password": "s3cret-Passw0rd-for-shop"})
        _, _, answer = request(
            server.port, "POST", LOGIN, login.encode(), {"Content-Type": "application/json"}
        )
        token = json.loads(answer)["data"]["token"]
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token}",
            "Idempotency-Key": "order-1042",
        }
        start = Barrier(16)

        def post(_):
            start.wait()
            status, _, content = request(
                server.port, "POST", JOBS, json.dumps(BODY).encode(), headers
            )
            return status, content

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(post, range(16)))
        made = {content for status, content in answers if status == 201}
        assert len(made) == 1  # the first answer, and the same one again to every replay
        url = f"{JOBS}/{json.loads(made.pop())['data']['id']}"
        del headers["Idempotency-Key"]

        def patch(body: dict, extra: dict, barrier: Barrier) -> tuple[int, bytes]:
            barrier.wait()
            status, _, content = request(
                server.port, "PATCH", url, json.dumps(body).encode(), headers | extra
            )
            return status, content

        # Six updates of six fields at once: each change is kept.
        fields_at_once = Barrier(len(EACH_FIELD))
        with ThreadPoolExecutor(len(EACH_FIELD)) as pool:
            updated = list(pool.map(lambda b: patch(b, {}, fields_at_once), EACH_FIELD))
        _, read_headers, answer = request(server.port, "GET", url, None, headers)
        data, etag = json.loads(answer)["data"], read_headers["ETag"]
        # Sixteen updates sent with that ETag at once: one is made.
        one_match = Barrier(16)
        with ThreadPoolExecutor(16) as pool:
            guarded = list(
                pool.map(
                    lambda i: patch({"notes": f"writer {i}"}, {"If-Match": etag}, one_match),
                    range(16),
                )
            )
    finally:
        server.stop()

    assert [status for status, _ in updated] == [200] * len(EACH_FIELD)
    assert {path: shown(data, path) for path in KEPT} == KEPT
    assert Counter(status for status, _ in guarded) == {200: 1, 412: 15}

    assert manage_shell(env, "from jobs.models import Job; print(Job.objects.count())") == "1"
    statuses = Counter(status for status, _ in answers)
    assert set(statuses) <= {201, 409}, statuses
    answered_by = {
        json.loads(line)["process"]
        for line in (tmp_path / "log").read_text().splitlines()
        if line.startswith("{") and '"path": "/crmapi/rest/v2/jobs"' in line
    }
    assert len(answered_by) > 1, "every request went to one worker: the test proved nothing"
