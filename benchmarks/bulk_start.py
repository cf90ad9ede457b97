"""Bulk start benchmark: the service against the naive django-fsm loop and against raw SQL.

    make bench                                   # SQLite (a throwaway file)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/jobs make bench   # also PostgreSQL

Every variant starts the same N pending jobs from the same starting data, in one run:
  (a) service  jobs.services.bulk_start_progress over a queryset, default batch size
  (b) naive    per job: load, transition, save, log row, each in its own transaction
  (c) raw SQL  one INSERT … SELECT for the log rows and one UPDATE
Targets: (a) at least 10x faster than (b), and within 30x of (c); (a)'s peak memory does not grow
with N. Timings run without tracemalloc; peak memory is measured in a second, traced run.
It never touches the development database: SQLite runs in a temporary file, PostgreSQL in a
test database created and dropped here.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable

from common import make_dispatcher, make_pending_jobs, make_types, throwaway_database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=2_000, help="N for the memory-growth check")
    args = parser.parse_args()
    with throwaway_database() as vendor:
        report(vendor, args.jobs, args.small)


def report(vendor: str, n: int, small: int) -> None:
    user = make_dispatcher()
    types = make_types()
    variants: dict[str, Callable[[], None]] = {
        "service": lambda: run_service(user),
        "naive": lambda: run_naive(user),
        "raw SQL": lambda: run_raw_sql(user),
    }

    print(f"\nBulk start of {n:,} pending jobs on {vendor}")
    print(f"{'variant':<10}{'seconds':>10}{'jobs/s':>12}{'peak MiB':>11}")
    seconds: dict[str, float] = {}
    for name, run in variants.items():
        reset_jobs(types, n)
        started = time.perf_counter()
        run()
        seconds[name] = time.perf_counter() - started
        check_all_started(n)
        reset_jobs(types, n)
        peak = traced_peak(run)
        check_all_started(n)
        print(f"{name:<10}{seconds[name]:>10.3f}{n / seconds[name]:>12,.0f}{peak:>11.1f}")

    reset_jobs(types, small)
    small_peak = traced_peak(variants["service"])
    reset_jobs(types, n)
    large_peak = traced_peak(variants["service"])

    speedup = seconds["naive"] / seconds["service"]
    behind_raw = seconds["service"] / seconds["raw SQL"]
    raw_ok = verdict(behind_raw <= 30)
    growth = large_peak / small_peak
    print(f"service vs naive: {speedup:.1f}x faster  (target >= 10x: {verdict(speedup >= 10)})")
    print(f"service vs raw SQL: {behind_raw:.1f}x slower  (target <= 30x: {raw_ok})")
    print(
        f"service peak memory: {small_peak:.1f} MiB for {small:,} jobs, {large_peak:.1f} MiB for "
        f"{n:,} ({growth:.2f}x for {n / small:.0f}x the jobs; flat: {verdict(growth < 1.5)})"
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


def reset_jobs(types, n: int) -> None:
    from jobs.models import Job, JobTransitionLog

    JobTransitionLog.objects.all().delete()
    Job.objects.all().delete()
    make_pending_jobs(types, n)


def check_all_started(n: int) -> None:
    from jobs.models import Job, JobTransitionLog, LifeCycleState

    started = Job.objects.filter(life_cycle_state=LifeCycleState.IN_PROGRESS).count()
    logged = JobTransitionLog.objects.count()
    if started != n or logged != n:
        raise SystemExit(f"variant left {started} started and {logged} logged of {n}")


def run_service(user) -> None:
    from jobs.models import Channel, Job, LifeCycleState
    from jobs.services import bulk_start_progress

    bulk_start_progress(
        jobs=Job.objects.filter(life_cycle_state=LifeCycleState.PENDING),
        user=user,
        channel=Channel.COMMAND,
    )


def run_naive(user) -> None:
    from django.db import transaction
    from django.utils import timezone

    from jobs.models import Channel, Job, JobTransitionLog, LifeCycleState
    from jobs.services import ensure_can_start

    ensure_can_start(user)
    for pk in Job.objects.filter(life_cycle_state=LifeCycleState.PENDING).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            job = Job.objects.select_related("type__default_start_status").get(pk=pk)
            from_status = job.status_id
            status = job.type.default_start_status
            job.start_progress(status=status, by=user, at=timezone.now())
            job.save()
            JobTransitionLog.objects.create(
                job=job,
                from_state=LifeCycleState.PENDING,
                to_state=job.life_cycle_state,
                from_status_id=from_status,
                to_status=status,
                user=user,
                channel=Channel.COMMAND,
            )


def run_raw_sql(user) -> None:
    from django.db import connection, transaction
    from django.utils import timezone

    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO jobs_jobtransitionlog
                (job_id, from_state, to_state, from_status_id, to_status_id, user_id, channel,
                 created_at)
            SELECT j.id, 'PENDING', 'IN_PROGRESS', j.status_id, t.default_start_status_id, %s,
                   'command', %s
            FROM jobs_job j JOIN jobs_jobtype t ON t.id = j.type_id
            WHERE j.life_cycle_state = 'PENDING'
            """,
            [user.pk, now],
        )
        cursor.execute(
            """
            UPDATE jobs_job SET
                life_cycle_state = 'IN_PROGRESS',
                status_id = (SELECT default_start_status_id FROM jobs_jobtype t
                             WHERE t.id = jobs_job.type_id),
                updated_by_user_id = %s,
                updated_date = %s
            WHERE life_cycle_state = 'PENDING'
            """,
            [user.pk, now],
        )


if __name__ == "__main__":
    main()
