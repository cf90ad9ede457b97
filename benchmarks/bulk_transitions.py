"""Bulk transition benchmark: the service against the naive django-fsm loop and against raw SQL,
for every declared transition (start_progress, complete, cancel).

    make bench                                   # SQLite (a throwaway file)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/jobs make bench   # also PostgreSQL
    python benchmarks/bulk_transitions.py --jobs 2000 --transitions cancel   # a quick look

For each transition, every variant moves the same N jobs (in the transition's first source state)
from the same starting data, in one run:
  (a) service  jobs.services.job_bulk_transition over a queryset, default batch size
  (b) naive    per job: load, transition, save, log row, event row, each in its own transaction
  (c) raw SQL  one INSERT … SELECT for the log rows, one for the events and one UPDATE, by hand
Targets: (a) at least 10x faster than (b), and within 30x of (c) (3x on PostgreSQL at 100,000
jobs: `--jobs 100000 --without-naive`); (a)'s peak memory does not grow with N. Timings run
without tracemalloc; peak memory is measured in a second, traced run.
It never touches the development database: SQLite runs in a temporary file, PostgreSQL in a
test database created and dropped here.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable

from common import make_dispatcher, make_jobs, make_types, throwaway_database

# What each transition writes beyond state, status and updated_*, as raw SQL's SET clauses
# (%(now)s is the batch time): the hand-written baseline the service is measured against.
RAW_EXTRA_COLUMNS = {
    "submit": [],
    "start_progress": ["actual_start_date = %(now)s"],
    "complete": ["actual_completed_date = %(now)s"],
    "cancel": [
        "cancellation_reason_id = (SELECT default_cancellation_reason_id FROM jobs_jobtype t "
        "WHERE t.id = jobs_job.type_id)"
    ],
}


def main() -> None:
    from_doc = __doc__.split("\n")[0]
    parser = argparse.ArgumentParser(description=from_doc)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=2_000, help="N for the memory-growth check")
    parser.add_argument(
        "--transitions", default="start_progress,complete,cancel", help="comma-separated"
    )
    parser.add_argument(
        "--without-naive", action="store_true", help="skip the naive loop (slow at 100,000 jobs)"
    )
    args = parser.parse_args()
    with throwaway_database() as vendor:
        user, types = make_dispatcher(), make_types()
        for name in args.transitions.split(","):
            report(vendor, name, user, types, args.jobs, args.small, naive=not args.without_naive)


def report(vendor: str, name: str, user, types, n: int, small: int, naive: bool = True) -> None:
    from jobs.transitions import TRANSITIONS

    declared = TRANSITIONS[name]
    variants: dict[str, Callable[[], None]] = {
        "service": lambda: run_service(declared, user),
        "naive": lambda: run_naive(declared, user),
        "raw SQL": lambda: run_raw_sql(declared, user),
    }
    if not naive:
        del variants["naive"]

    print(f"\nBulk {name} of {n:,} {declared.sources[0]} jobs on {vendor}")
    print(f"{'variant':<10}{'seconds':>10}{'jobs/s':>12}")
    seconds: dict[str, float] = {}
    for variant, run in variants.items():
        reset_jobs(declared, types, n)
        started = time.perf_counter()
        run()
        seconds[variant] = time.perf_counter() - started
        check_all_moved(declared, n)
        print(f"{variant:<10}{seconds[variant]:>10.3f}{n / seconds[variant]:>12,.0f}")

    reset_jobs(declared, types, small)
    small_peak = traced_peak(variants["service"])
    reset_jobs(declared, types, n)
    large_peak = traced_peak(variants["service"])
    check_all_moved(declared, n)

    if name == "start_progress":
        outbox_overhead(declared, user, types, n)

    behind_raw = seconds["service"] / seconds["raw SQL"]
    growth = large_peak / small_peak
    if naive:
        speedup = seconds["naive"] / seconds["service"]
        print(f"service vs naive: {speedup:.1f}x faster  (target >= 10x: {verdict(speedup >= 10)})")
    target = 3 if vendor == "postgresql" and n >= 100_000 else 30
    print(
        f"service vs raw SQL: {behind_raw:.1f}x slower  "
        f"(target <= {target}x: {verdict(behind_raw <= target)})"
    )
    print(
        f"service peak memory: {small_peak:.1f} MiB for {small:,} jobs, {large_peak:.1f} MiB for "
        f"{n:,} ({growth:.2f}x for {n / small:.0f}x the jobs; flat: {verdict(growth < 1.5)})"
    )


def outbox_overhead(declared, user, types, n: int) -> None:
    """The events' cost: the service with one webhook endpoint subscribed (events written, one
    message per batch to the broker) against the service with the outbox switched off."""
    from unittest import mock

    from jobs.models import Event, WebhookEndpoint
    from jobs.services import engine
    from jobs.sql import writes as sql

    def without_events(update, inserts, write=sql.write):
        return write(update, [rows for rows in inserts if rows.model is not Event])

    endpoint = WebhookEndpoint.objects.create(url="https://receiver.example/hook")
    timings = {}
    for label, patches in (
        (
            "without events",
            [
                mock.patch.object(sql, "write", without_events),
                mock.patch.object(engine, "events_written", return_value=None),
            ],
        ),
        ("1 endpoint subscribed", []),
    ):
        reset_jobs(declared, types, n)
        for patch in patches:
            patch.start()
        try:
            started = time.perf_counter()
            run_service(declared, user)
            timings[label] = time.perf_counter() - started
        finally:
            for patch in patches:
                patch.stop()
    endpoint.delete()
    ratio = timings["1 endpoint subscribed"] / timings["without events"]
    print(
        f"events: {timings['1 endpoint subscribed']:.3f} s with 1 endpoint subscribed, "
        f"{timings['without events']:.3f} s without events: {ratio:.2f}x "
        f"(target <= 1.5x: {verdict(ratio <= 1.5)})"
    )


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def traced_peak(run: Callable[[], None]) -> float:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def reset_jobs(declared, types, n: int) -> None:
    from django.db import connection

    from jobs.models import Event, Job, JobTransitionLog

    if connection.vendor == "postgresql":
        # One statement: deleting 100,000 jobs through the ORM binds a parameter per job, past
        # what a statement bound on the server takes (65,535).
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE jobs_event, jobs_jobtransitionlog, jobs_job CASCADE")
    else:
        Event.objects.all().delete()
        JobTransitionLog.objects.all().delete()
        Job.objects.all().delete()
    make_jobs(types, n, declared.sources[0])
    if connection.vendor == "postgresql":
        # Every variant starts from tables without the dead rows of the one before: each run of
        # 100,000 jobs left 100,000 per table, and the next run took twice as long, then three
        # times (autovacuum gets there, but not between two runs).
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE jobs_job, jobs_jobtransitionlog, jobs_event")


def check_all_moved(declared, n: int) -> None:
    from jobs.models import Event, Job, JobTransitionLog

    moved = Job.objects.filter(life_cycle_state=declared.target).count()
    logged = JobTransitionLog.objects.count()
    announced = Event.objects.count()
    if not moved == logged == announced == n:
        raise SystemExit(f"variant left {moved} moved, {logged} logged, {announced} events of {n}")


def run_service(declared, user) -> None:
    from jobs.models import Channel, Job
    from jobs.services import job_bulk_transition

    job_bulk_transition(
        transition=declared,
        jobs=Job.objects.filter(life_cycle_state__in=declared.sources),
        user=user,
        channel=Channel.COMMAND,
    )


def run_naive(declared, user) -> None:
    """What a django-fsm user would write: load each job, call the transition, save, log."""
    from django.db import transaction
    from django.utils import timezone

    from jobs.models import Channel, Event, Job, JobStatus, JobTransitionLog
    from jobs.services import ensure_permitted
    from jobs.services.records import event_data, reference

    ensure_permitted(user, declared)
    relations = [f"type__{declared.default_status_field}"] + [
        f"type__{p.type_default_field}" for p in declared.parameters
    ]
    for pk in Job.objects.filter(life_cycle_state__in=declared.sources).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            job = Job.objects.select_related(*relations).get(pk=pk)
            from_state, from_status = job.life_cycle_state, job.status_id
            status = getattr(job.type, declared.default_status_field)
            extra = {p.name: getattr(job.type, p.type_default_field) for p in declared.parameters}
            declared.apply(job, status=status, by=user, at=timezone.now(), **extra)
            job.save()
            JobTransitionLog.objects.create(
                job=job,
                transition=declared.name,
                from_state=from_state,
                to_state=job.life_cycle_state,
                from_status_id=from_status,
                to_status=status,
                user=user,
                channel=Channel.COMMAND,
                **extra,
            )
            leaving = JobStatus.objects.get(pk=from_status)
            Event.objects.create(
                job=job,
                type=declared.event,
                timestamp=job.updated_date,
                data=event_data(
                    declared,
                    job,
                    from_state=from_state,
                    from_status=reference(leaving),
                    user=user,
                    channel=Channel.COMMAND,
                ),
            )


def run_raw_sql(declared, user) -> None:
    from django.db import connection, transaction
    from django.utils import timezone

    default = f"{declared.default_status_field}_id"
    sources = ", ".join(f"'{state}'" for state in declared.sources)
    reason = "t.default_cancellation_reason_id" if declared.parameters else "NULL"
    params = {
        "user": user.pk,
        "now": timezone.now(),
        "name": declared.name,
        "target": declared.target,
        "event": declared.event,
    }
    extra = "".join(f", {clause}" for clause in RAW_EXTRA_COLUMNS[declared.name])
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO jobs_jobtransitionlog
                (job_id, transition, from_state, to_state, from_status_id, to_status_id, user_id,
                 channel, created_at, cancellation_reason_id)
            SELECT j.id, %(name)s, j.life_cycle_state, %(target)s, j.status_id, t.{default},
                   %(user)s, 'command', %(now)s, {reason}
            FROM jobs_job j JOIN jobs_jobtype t ON t.id = j.type_id
            WHERE j.life_cycle_state IN ({sources})
            """,
            params,
        )
        status = "{}('id', s.id, 'name', s.name, 'alternative_code', s.alternative_code)".format
        json = "json_build_object" if connection.vendor == "postgresql" else "json_object"
        if connection.vendor == "postgresql":
            public_id = "'evt_' || md5(random()::text || j.id)"
            txid, data = "pg_current_xact_id()::text::bigint", f"{json}(%s)::jsonb"
        else:
            public_id, txid, data = "'evt_' || lower(hex(randomblob(16)))", "0", f"{json}(%s)"

        def text(param: str) -> str:
            return f"CAST({param} AS text)" if connection.vendor == "postgresql" else param

        reason_ref = (
            f", 'cancellation_reason', {json}('id', r.id, 'name', r.name, "
            "'alternative_code', r.alternative_code)"
            if declared.parameters
            else ""
        )
        fields = (
            f"'job', {json}('id', j.id, 'number', j.number, 'type', "
            f"{json}('id', t.id, 'alternative_code', t.alternative_code)), "
            # Typed: with every statement bound on the server (the default), PostgreSQL cannot
            # tell a bare parameter's type inside a function call.
            f"'from_state', j.life_cycle_state, 'to_state', {text('%(target)s')}, "
            f"'from_status', {status(json).replace('s.', 'fs.')}, "
            f"'to_status', {status(json).replace('s.', 'ts.')}, "
            f"'user', {json}('id', u.id, 'username', u.username), 'channel', 'command'" + reason_ref
        )
        cursor.execute(
            f"""
            INSERT INTO jobs_event (public_id, type, timestamp, data, txid, fanned_out, job_id)
            SELECT {public_id}, %(event)s, %(now)s, {data % fields}, {txid}, FALSE, j.id
            FROM jobs_job j JOIN jobs_jobtype t ON t.id = j.type_id
            JOIN jobs_jobstatus fs ON fs.id = j.status_id
            JOIN jobs_jobstatus ts ON ts.id = t.{default}
            JOIN auth_user u ON u.id = %(user)s
            LEFT JOIN jobs_jobcancellationreason r ON r.id = t.default_cancellation_reason_id
            WHERE j.life_cycle_state IN ({sources})
            """,
            params,
        )
        cursor.execute(
            f"""
            UPDATE jobs_job SET
                life_cycle_state = %(target)s,
                status_id = (SELECT {default} FROM jobs_jobtype t WHERE t.id = jobs_job.type_id),
                updated_by_user_id = %(user)s,
                updated_date = %(now)s,
                version = version + 1{extra}
            WHERE life_cycle_state IN ({sources})
            """,
            params,
        )


if __name__ == "__main__":
    main()
