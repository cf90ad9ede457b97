import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from jobs.models import Job
from jobs.transitions import TRANSITIONS

ROOT = "/crmapi/rest/v2/"
LOGIN = ROOT + "authentication/token"
RELEASE = ROOT + "authentication/token/release"
JOBS = ROOT + "jobs"


# A test of every declared transition, one case each.
every_transition = pytest.mark.parametrize("declared", TRANSITIONS.values(), ids=TRANSITIONS)


def by_identifier_url(transition: str) -> str:
    """CRM.COM's method: the job named in the body."""
    return f"{JOBS}/all_scopes/{transition}"


def in_path_url(job, transition: str) -> str:
    return f"{JOBS}/{job.pk}/{transition}"


def code_of(response) -> tuple[int, str]:
    return response.status_code, response.json()["status"]["code"]


ON_POSTGRESQL = settings.DATABASES["default"]["ENGINE"].endswith(".postgresql")

# Writing one moved job: the compare-and-set UPDATE, the log row and the event, which PostgreSQL
# takes as one statement.
WRITES = 1 if ON_POSTGRESQL else 3
# Writing a batch: the compare-and-set UPDATE (the ORM's), then the log rows and the events, which
# PostgreSQL takes as one statement.
BATCH_WRITES = 2 if ON_POSTGRESQL else 3

requires_postgresql = pytest.mark.skipif(
    not ON_POSTGRESQL,
    reason="needs real row locks and concurrent connections: "
    "run with DATABASE_URL=postgres://postgres@127.0.0.1:5432/jobs",
)


class DataQueries:
    """The SQL run inside the block, less transaction control (SAVEPOINT, RELEASE, ROLLBACK TO),
    which depends on how deeply the caller nests atomic blocks, not on the work done."""

    def __init__(self, context) -> None:
        self._context = context

    @property
    def sql(self) -> list[str]:
        return [
            q["sql"]
            for q in self._context.captured_queries
            if not q["sql"].upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN"))
        ]

    def __len__(self) -> int:
        return len(self.sql)


@contextmanager
def count_queries() -> Iterator[DataQueries]:
    with CaptureQueriesContext(connection) as context:
        yield DataQueries(context)


@contextmanager
def failing_log_insert(on_call: int) -> Iterator[None]:
    """Make the database fail the `on_call`-th INSERT into the transition log, as a full disk or
    a dropped connection would."""
    seen = [0]

    def wrapper(execute, sql, params, many, context):
        # A statement that writes log rows (for one job on PostgreSQL, inside a WITH).
        if "insert into " + connection.ops.quote_name("jobs_jobtransitionlog") in sql.lower():
            seen[0] += 1
            if seen[0] == on_call:
                raise DatabaseError("injected failure: disk full")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield


def run_command(name: str, *args: str) -> tuple[int, str, str]:
    """Run a management command as an operator would; return (exit code, stdout, stderr)."""

    out, err = StringIO(), StringIO()
    try:
        call_command(name, *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    except CommandError as error:
        code = error.returncode
        err.write(str(error))
    return code, out.getvalue(), err.getvalue()


def states(*jobs) -> list[str]:
    """Each job's life cycle state as the database has it now."""
    return [Job.objects.get(pk=j.pk).life_cycle_state for j in jobs]


# --- the admin ---------------------------------------------------------------------------------


def logged_in(user) -> Client:
    """A browser logged in to the admin as `user`."""
    client = Client()
    client.force_login(user)
    return client


def changelist_url() -> str:
    return reverse("admin:jobs_job_changelist")


def run_action(client, declared, jobs, url=None, **extra):
    """Choose the transition's bulk action for `jobs` on the changelist; with `confirm` among
    `extra`, confirm it and follow to the page that reports it."""
    data = {
        "action": f"{declared.name}_action",
        "_selected_action": [j.pk for j in jobs],
        **extra,
    }
    return client.post(url or changelist_url(), data, follow="confirm" in extra)


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]


# --- servers and documents -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def openapi_schema() -> dict:
    out = StringIO()
    call_command("spectacular", "--format", "openapi-json", stdout=out)
    return json.loads(out.getvalue())
