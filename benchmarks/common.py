"""What every benchmark needs: Django on a throwaway database, never the development one.

SQLite runs in a temporary file; with DATABASE_URL set, PostgreSQL runs in a test database that
is created here and dropped at the end.
"""

from __future__ import annotations

import http.client
import os
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


@contextmanager
def throwaway_database() -> Iterator[str]:
    """Set Django up on a fresh, migrated database; yield its vendor ("sqlite", "postgresql")."""
    if not os.environ.get("DATABASE_URL"):
        scratch = Path(tempfile.mkdtemp()) / "bench.sqlite3"
        os.environ["DATABASE_URL"] = f"sqlite:///{scratch}"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    settings.DEBUG = False  # no query log growing in memory
    if not os.environ.get("REDIS_URL"):
        # The folder broker of `make run`, in a folder of this run's own.
        from config.celery import app

        folder = Path(tempfile.mkdtemp()) / "broker"
        for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
            app.conf.broker_transport_options[key] = str(folder)
        folder.mkdir()
    # Requests are logged as in production (the cost counts), but to nowhere: the figures are
    # the output.
    import logging

    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 (lives as long as the run)
    if connection.vendor == "sqlite":
        call_command("migrate", verbosity=0)
    else:
        connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        yield connection.vendor
    finally:
        if connection.vendor != "sqlite":
            connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


def make_dispatcher(username: str = "bench-dispatcher", *, unit=None):
    """A dispatcher who sees every job, or (with `unit`, a Group) only that unit's."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create(username=username)
    codenames = ["submit_job", "start_progress_job", "complete_job", "cancel_job", "view_job"]
    if unit is None:
        codenames.append("view_all_jobs")
    else:
        user.groups.add(unit)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def make_types(count: int = 3):
    """Job types with a status in every state, every transition's default status and a default
    cancellation reason (the status in each state is kept in `.status_in`)."""
    from jobs.models import JobCancellationReason, JobStatus, JobType, LifeCycleState
    from jobs.transitions import TRANSITIONS

    reason = JobCancellationReason.objects.create(name="Bench", alternative_code="BENCH")
    types = []
    for index in range(count):
        code = chr(ord("A") + index)
        job_type = JobType.objects.create(
            name=f"Bench {code}",
            alternative_code=f"BENCH-{code}",
            default_cancellation_reason=reason,
        )
        job_type.status_in = {
            state: JobStatus.objects.create(
                name=f"{code} {state}", alternative_code=f"{code}-{state}", life_cycle_state=state
            )
            for state in LifeCycleState.values
        }
        job_type.allowed_statuses.add(*job_type.status_in.values())
        for declared in TRANSITIONS.values():
            setattr(job_type, declared.default_status_field, job_type.status_in[declared.target])
        job_type.save()
        types.append(job_type)
    return types


def make_jobs(types, n: int, state: str = "PENDING", prefix: str = "BN") -> list[int]:
    from jobs.models import Job

    created = Job.objects.bulk_create(
        (
            Job(
                number=f"{prefix}{i:06d}",
                type=types[i % len(types)],
                status=types[i % len(types)].status_in[state],
                life_cycle_state=state,
            )
            for i in range(n)
        ),
        batch_size=1000,
    )
    return [job.pk for job in created]


def make_pending_jobs(types, n: int, prefix: str = "BN") -> list[int]:
    return make_jobs(types, n, "PENDING", prefix)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(port: int, timeout: float = 30, path: str = "/health/ready") -> None:
    """Until the server answers 200 at `path` (readiness: the database and cache answer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("gunicorn did not become ready in time")


def interleaved(variants: dict, requests: int, rounds: int) -> dict[str, float]:
    """Seconds per call of each variant, run in interleaved rounds (each round starting with
    another variant) so that a slower moment of the machine falls on all of them alike."""
    names = list(variants)
    spent = dict.fromkeys(names, 0.0)
    per_round = requests // rounds
    for name in names:
        for _ in range(20):  # untimed: what is prepared once is ready
            variants[name]()
    for round_ in range(rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            began = time.perf_counter()
            for _ in range(per_round):
                variants[name]()
            spent[name] += time.perf_counter() - began
    return {name: spent[name] / (per_round * rounds) for name in names}


def print_against(title: str, each: dict[str, float], floor: str, goal: tuple[str, float]) -> None:
    """Each variant's time and its ratio to `floor`'s, and whether `goal` (variant, at most that
    ratio) is met."""
    print(f"\n{title}")
    print(f"  {'variant':<40}{'ms':>8}{'vs raw':>9}")
    for name, seconds in each.items():
        print(f"  {name:<40}{seconds * 1000:>8.2f}{seconds / each[floor]:>8.1f}x")
    name, most = goal
    ratio = each[name] / each[floor]
    print(
        f"  {name} vs raw: {ratio:.1f}x (goal <= {most}x: {'met' if ratio <= most else 'MISSED'})"
    )
