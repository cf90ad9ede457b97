"""Sixteen creates at once with one Idempotency-Key make one job: in one process (threads, each
with its own connection) and under gunicorn with four worker processes. PostgreSQL only: SQLite's
writers take turns, which would prove nothing."""

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

from jobs.models import Event, Job
from tests.factories import GroupFactory, JobTypeFactory, UserFactory
from tests.helpers import JOBS, LOGIN, requires_postgresql
from tests.test_concurrency import run_at_once
from tests.test_production import BIN, ROOT, Served, create_user, production_env, request

pytestmark = requires_postgresql
BODY = {"type_identifier": {"alternative_code": "REPAIR"}, "description": "once"}


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


def test_sixteen_requests_with_one_key_to_four_gunicorn_workers_create_one_job(
    tmp_path, scratch_database
):
    env = production_env(tmp_path, DATABASE_URL=scratch_database, GUNICORN_WORKERS="4")
    create_user(env, "shop", "s3cret-Passw0rd-for-shop", "view_job", "add_job", "view_all_jobs")
    manage_shell(
        env, "from tests.factories import JobTypeFactory\nJobTypeFactory(alternative_code='REPAIR')"
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
    finally:
        server.stop()

    assert manage_shell(env, "from jobs.models import Job; print(Job.objects.count())") == "1"
    statuses = Counter(status for status, _ in answers)
    assert set(statuses) <= {201, 409}, statuses
    made = {content for status, content in answers if status == 201}
    assert len(made) == 1  # the first answer, and the same one again to every replay
    answered_by = {
        json.loads(line)["process"]
        for line in (tmp_path / "log").read_text().splitlines()
        if line.startswith("{") and '"path": "/crmapi/rest/v2/jobs"' in line
    }
    assert len(answered_by) > 1, "every request went to one worker: the test proved nothing"
