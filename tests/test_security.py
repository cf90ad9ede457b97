"""The security matrix: one test per row, each the proof of one promise in the README's
"Guarantees". Every refusal also checks that nothing changed."""

import logging
import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

import jwt
import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework_simplejwt.tokens import SlidingToken

from jobs.models import Job
from tests.factories import JobFactory, UserFactory
from tests.helpers import ROOT, by_identifier_url, code_of

pytestmark = pytest.mark.django_db

START = by_identifier_url("start_progress")
PROJECT = Path(__file__).resolve().parent.parent


# --- tokens: every unusable token is 401 AUTHENTICATION_FAILED --------------------------------


def no_token(user):
    return {}


def malformed_token(user):
    return {"HTTP_AUTHORIZATION": "Bearer not.a.jwt"}


def expired_token(user):
    token = SlidingToken.for_user(user)
    token.set_exp(from_time=timezone.now() - timedelta(hours=3), lifetime=timedelta(hours=2))
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def released_token(user):
    token = SlidingToken.for_user(user)
    token.blacklist()
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def token_signed_with_another_key(user):
    payload = dict(SlidingToken.for_user(user).payload)
    forged = jwt.encode(payload, "another-signing-key-of-a-decent-length!!", algorithm="HS256")
    return {"HTTP_AUTHORIZATION": f"Bearer {forged}"}


def token_of_a_deactivated_user(user):
    token = SlidingToken.for_user(user)
    user.is_active = False
    user.save()
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.mark.parametrize(
    "credentials",
    [
        no_token,
        malformed_token,
        expired_token,
        released_token,
        token_signed_with_another_key,
        token_of_a_deactivated_user,
    ],
)
def test_an_unusable_token_is_authentication_failed_and_changes_nothing(
    dispatcher, unchanged, credentials
):
    job = JobFactory()
    unchanged()
    client = Client(**credentials(dispatcher))

    response = client.post(
        START, {"job_identifier": {"number": job.number}}, content_type="application/json"
    )

    assert code_of(response) == (401, "AUTHENTICATION_FAILED")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_bad_token_in_the_body_is_authentication_failed(api, unchanged):
    job = JobFactory()
    unchanged()
    response = api.post(
        START, {"token": "not-a-token", "job_identifier": {"number": job.number}}, format="json"
    )
    assert code_of(response) == (401, "AUTHENTICATION_FAILED")


# --- permission: refused at every door, nothing changed -------------------------------------


def test_the_api_refuses_a_user_without_the_permission(api, viewer, token_for, unchanged):
    job = JobFactory()
    unchanged()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(viewer)}")
    assert code_of(api.post(START, {"job_identifier": {"number": job.number}}, format="json")) == (
        403,
        "PERMISSION_DENIED",
    )
    response = api.post(f"{ROOT}jobs/{job.pk}/start_progress", {}, format="json")
    assert code_of(response) == (403, "PERMISSION_DENIED")


def test_the_admin_action_refuses_a_user_without_the_permission(client, viewer, unchanged):
    job = JobFactory()
    unchanged()
    client.force_login(viewer)
    response = client.post(
        reverse("admin:jobs_job_changelist"),
        {
            "action": "start_progress_action",
            "_selected_action": [job.pk],
            "confirm": "1",
            "status": "",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert "started" not in response.content.decode()


def test_the_admin_button_refuses_a_user_without_the_permission(client, viewer, unchanged):
    job = JobFactory()
    unchanged()
    client.force_login(viewer)
    response = client.post(
        reverse("admin:jobs_job_start_progress", args=[job.pk]), {"status": ""}, follow=True
    )
    messages = [m.message for m in response.context["messages"]]
    assert any("may not start progress" in m for m in messages)


# --- the command's --user ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "message"),
    [("nobody", "unknown user 'nobody'"), ("retired", "user 'retired' is inactive")],
)
def test_the_command_refuses_an_unknown_or_inactive_user(unchanged, username, message):
    UserFactory(username="retired", is_active=False, permissions=["start_progress_job"])
    job = JobFactory()
    unchanged()
    with pytest.raises(CommandError, match=message) as refusal:
        call_command("start_job_progress", job.number, "--user", username, stdout=StringIO())
    assert refusal.value.returncode == 2


# --- login throttling -------------------------------------------------------------------------


def test_login_is_throttled_per_username_and_address(api, dispatcher):
    def login(username="dispatcher", password="pw", address="127.0.0.1"):
        return api.post(
            ROOT + "authentication/token",
            {"username": username, "password": password},
            format="json",
            REMOTE_ADDR=address,
        )

    for _ in range(10):
        login(password="guess")

    throttled = login()
    assert code_of(throttled) == (429, "THROTTLED")
    assert int(throttled["Retry-After"]) > 0
    UserFactory(username="other")
    assert code_of(login(username="other")) == (200, "OK")  # another username, same address
    assert code_of(login(address="10.9.8.7")) == (200, "OK")  # same username, another address


# --- nothing leaks ----------------------------------------------------------------------------


def test_with_debug_off_an_api_failure_shows_no_traceback_or_sql(
    as_dispatcher, monkeypatch, settings
):
    settings.DEBUG = False
    job = JobFactory()

    def database_down(**kwargs):
        raise DatabaseError('relation "jobs_job" does not exist: SELECT "jobs_job"."id" FROM')

    monkeypatch.setattr("jobs.api.transitions.job_transition", database_down)
    response = as_dispatcher.post(START, {"job_identifier": {"number": job.number}}, format="json")
    text = response.content.decode()
    assert code_of(response) == (500, "INTERNAL_ERROR")
    for leak in ("Traceback", "SELECT", "jobs_job", "DatabaseError", 'File "'):
        assert leak not in text


def test_with_debug_off_an_admin_failure_shows_no_traceback_or_sql(
    client, dispatcher, monkeypatch, settings
):
    settings.DEBUG = False
    client.force_login(dispatcher)
    client.raise_request_exception = False

    def database_down(*args, **kwargs):
        raise DatabaseError('SELECT "jobs_job"."id" FROM "jobs_job"')

    monkeypatch.setattr("jobs.admin.jobs.JobAdmin.get_queryset", database_down)
    response = client.get(reverse("admin:jobs_job_changelist"))
    text = response.content.decode()
    assert response.status_code == 500
    assert "Traceback" not in text
    assert "SELECT" not in text


def test_the_app_refuses_to_start_with_debug_off_and_no_secret_key():
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    run = [sys.executable, "-c", "import django; django.setup()"]

    refused = subprocess.run(
        run, cwd=PROJECT, env={**env, "DEBUG": "0"}, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in refused.stderr

    started = subprocess.run(
        run,
        cwd=PROJECT,
        env={**env, "DEBUG": "0", "SECRET_KEY": "x" * 50},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode == 0, started.stderr


def test_tokens_and_passwords_never_reach_the_logs(api, caplog):
    UserFactory(
        username="alice",
        password="correct horse battery",
        permissions=["view_job", "view_all_jobs", "start_progress_job"],
    )
    job = JobFactory()
    caplog.set_level(logging.DEBUG)

    api.post(
        ROOT + "authentication/token",
        {"username": "alice", "password": "wrong guess"},
        format="json",
    )
    token = api.post(
        ROOT + "authentication/token",
        {"username": "alice", "password": "correct horse battery"},
        format="json",
    ).json()["data"]["token"]
    api.post(START, {"token": token, "job_identifier": {"number": job.number}}, format="json")
    api.post(START, {"token": token, "job_identifier": {"number": job.number}}, format="json")
    api.post(START, {"token": token + "x", "job_identifier": {"number": job.number}}, format="json")
    api.post(ROOT + "authentication/token/release", {"token": token}, format="json")

    assert Job.objects.get(pk=job.pk).life_cycle_state == "IN_PROGRESS"
    assert caplog.records  # the flow did log (refusals are logged as warnings)
    for secret in (token, token.split(".")[2], "correct horse battery", "wrong guess"):
        assert secret not in caplog.text
