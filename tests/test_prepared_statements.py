"""Behind PgBouncer in transaction mode before 1.21, prepared statements go missing: the log says
which setting to change, once per process; the client sees the envelope's 500, nothing more."""

from __future__ import annotations

import logging

import psycopg.errors
import pytest
from django.db import ProgrammingError
from django.test import Client
from django.urls import reverse

from jobs import observability
from tests.factories import JobFactory
from tests.helpers import code_of, in_path_url

pytestmark = pytest.mark.django_db

MISSING = psycopg.errors.InvalidSqlStatementName('prepared statement "_pg3_3" does not exist')
TAKEN = psycopg.errors.DuplicatePreparedStatement('prepared statement "_pg3_0" already exists')


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch):
    monkeypatch.setattr(observability, "_prepared_statements_named", False)


def as_django_raises(cause: Exception):
    def raising(*args, **kwargs):
        raise ProgrammingError(str(cause)) from cause

    return raising


def named(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "DATABASE_PREPARED_STATEMENTS=none" in r.getMessage()]


@pytest.mark.parametrize("cause", [MISSING, TAKEN], ids=["missing", "already there"])
def test_the_api_names_the_setting_once_and_answers_the_envelopes_500(
    as_dispatcher, monkeypatch, caplog, cause
):
    monkeypatch.setattr("jobs.api.transitions.job_transition", as_django_raises(cause))
    job = JobFactory()
    answers = [as_dispatcher.post(in_path_url(job, "start_progress"), {}, format="json")]
    answers.append(as_dispatcher.post(in_path_url(job, "start_progress"), {}, format="json"))

    for answer in answers:
        assert code_of(answer) == (500, "INTERNAL_ERROR")
        assert "prepared" not in answer.content.decode()
    (record,) = named(caplog)
    assert record.levelname == "ERROR"
    assert record.sqlstate == cause.sqlstate


def test_the_admin_names_it_too(dispatcher, monkeypatch, caplog):
    monkeypatch.setattr("jobs.admin.jobs.JobAdmin.get_queryset", as_django_raises(MISSING))
    client = Client(raise_request_exception=False)
    client.force_login(dispatcher)
    assert client.get(reverse("admin:jobs_job_changelist")).status_code == 500
    assert len(named(caplog)) == 1


def test_other_errors_are_not_blamed_on_prepared_statements(as_dispatcher, monkeypatch, caplog):
    unrelated = psycopg.errors.UndefinedTable('relation "jobs_job" does not exist')
    monkeypatch.setattr("jobs.api.transitions.job_transition", as_django_raises(unrelated))
    answer = as_dispatcher.post(in_path_url(JobFactory(), "start_progress"), {}, format="json")
    assert code_of(answer) == (500, "INTERNAL_ERROR")
    assert named(caplog) == []
