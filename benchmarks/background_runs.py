"""Background runs at scale, on PostgreSQL: N pending jobs started by a run that Celery workers
carry out, against raw SQL doing the same work (log and event rows included).

For each size (--small, then --jobs) it fills the jobs, starts the run workers (`--workers`
processes of `celery worker --queues runs --pool solo`, as the Procfile's `runs`) and gunicorn
(2 workers), queues the run, and until it finishes keeps asking gunicorn for the admin's job
list and for `POST jobs/all_scopes/start_progress` on jobs outside the run. It prints the run's
time against raw SQL's, each worker's peak memory (VmHWM: it should not grow with N), and the
p50/p99 of both kinds of answer while the run went on.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/jobs REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python benchmarks/background_runs.py            # 1,000,000 jobs; 10+ minutes
"""

from __future__ import annotations

import argparse
import http.client
import http.cookiejar
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

from common import (
    ROOT,
    free_port,
    make_dispatcher,
    make_types,
    throwaway_database,
    wait_until_serving,
)

BIN = Path(sys.executable).parent
PASSWORD = "bench-password-123"
EXTRA = 2_000  # pending jobs outside the run, for the API starts made while it goes on
# The workers' and gunicorn's own lines: the figures are the output.
LOG = open(Path(tempfile.gettempdir()) / "jobs-bench-runs.log", "a")  # noqa: SIM115


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000, help="the size to compare with")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres") or not os.environ.get(
        "REDIS_URL"
    ):
        raise SystemExit("needs DATABASE_URL=postgres://… and REDIS_URL=redis://…")
    broker = os.environ["REDIS_URL"].rsplit("/", 1)[0] + "/9"
    os.environ["REDIS_URL"] = broker  # this process publishes there too
    with throwaway_database():
        import redis
        from django.conf import settings
        from django.db import connection

        redis.Redis.from_url(broker).flushdb()
        database = connection.settings_dict
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:"
            f"{database['PORT']}/{database['NAME']}",
            "REDIS_URL": broker,
            "DEBUG": "0",
            "SECRET_KEY": "bench-only-" + "x" * 50,
            "ALLOWED_HOSTS": "127.0.0.1",
            "LOG_LEVEL": "WARNING",
            "STATIC_ROOT": tempfile.mkdtemp(prefix="jobs-bench-static-"),
        }
        settings.ALLOWED_HOSTS = ["*"]
        # The admin's pages need their static files gathered, as the Procfile's web does.
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--no-input", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        user, types = make_dispatcher(), make_types()
        user.is_staff = True
        user.set_password(PASSWORD)
        user.save()

        print(f"Background runs on PostgreSQL, {args.workers} run workers, start_progress\n")
        results = {}
        for size in (args.small, args.jobs):
            fill(types, size)
            raw = timed(lambda: raw_start(user))
            fill(types, size)
            results[size] = (raw, *run_in_background(size, user, env, args.workers))
        report(results)


def fill(types, n: int) -> None:
    """N pending jobs, written by PostgreSQL itself (bulk_create takes minutes at a million)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE jobs_event, jobs_jobtransitionlog, jobs_job CASCADE")
        cursor.execute("TRUNCATE jobs_transitionrun CASCADE")
        for index, job_type in enumerate(types):
            cursor.execute(
                """
                INSERT INTO jobs_job (number, description, notes, type_id, status_id,
                                      life_cycle_state, rating_state, created_date,
                                      updated_date, version)
                SELECT 'BN' || lpad(g::text, 8, '0'), '', '', %s, %s, 'PENDING', 'PENDING',
                       now(), now(), 1
                FROM generate_series(%s::int, %s::int, %s::int) g
                """,
                [job_type.pk, job_type.status_in["PENDING"].pk, index + 1, n, len(types)],
            )
        cursor.execute("VACUUM ANALYZE jobs_job, jobs_jobtransitionlog, jobs_event")


def raw_start(user) -> None:
    from bulk_transitions import run_raw_sql

    from jobs.transitions import START_PROGRESS

    run_raw_sql(START_PROGRESS, user)


def timed(work) -> float:
    began = time.perf_counter()
    work()
    return time.perf_counter() - began


def run_in_background(n: int, user, env: dict[str, str], workers: int):
    from django.db import connection

    from jobs.models import Job, RunState, TransitionRun

    processes = [
        subprocess.Popen(
            [
                BIN / "celery", "-A", "config", "worker", "--without-gossip", "--without-mingle",
                "--without-heartbeat", "--queues", "runs", "--pool", "solo", "-n",
                f"bench-runs-{index}@%h", "--loglevel", "WARNING",
            ],
            cwd=ROOT,
            env=env,
            stdout=LOG,
            stderr=subprocess.STDOUT,
        )
        for index in range(workers)
    ]  # fmt: skip
    port = free_port()
    server = subprocess.Popen(
        [BIN / "gunicorn", "-c", "gunicorn.conf.py", "config.wsgi"],
        cwd=ROOT,
        env={**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "2"},
        stdout=LOG,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_serving(port)
        time.sleep(3)  # the workers connect to the broker
        # As a dispatcher does it: the Pending filter, "Select all", Start progress, confirm.
        admin = AdminSession(port)
        first = Job.objects.order_by("pk").values_list("pk", flat=True).first()
        action = {
            "action": "start_progress_action",
            "select_across": "1",
            "index": "0",
            "_selected_action": str(first),
        }
        confirmation = timed(lambda: admin.post(PENDING_LIST, action, expect=b"in-background"))
        queueing = timed(lambda: admin.post(PENDING_LIST, {**action, "confirm": "1", "status": ""}))
        run = TransitionRun.objects.get()
        began = time.perf_counter()
        extra = add_jobs_outside_the_run(n)
        probes = Probes(port, extra)
        probes.start()
        while TransitionRun.objects.filter(pk=run.pk, state=RunState.FINISHED).count() == 0:
            time.sleep(0.5)
        took = time.perf_counter() - began
        probes.stop()
        run.refresh_from_db()
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM jobs_jobtransitionlog WHERE run_id = %s", [run.pk])
            (logged,) = cursor.fetchone()
        if not run.moved == logged == n:
            raise SystemExit(f"run moved {run.moved}, logged {logged}, of {n}")
        peaks = [peak_memory_mib(process.pid) for process in processes]
        return took, peaks, probes.admin, probes.api, confirmation, queueing
    finally:
        for process in [*processes, server]:
            process.send_signal(signal.SIGTERM)
        for process in [*processes, server]:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


def add_jobs_outside_the_run(n: int) -> list[str]:
    """Pending jobs created after the run was queued: not part of it, for the API to start."""
    from django.db import connection

    from jobs.models import JobType

    job_type = JobType.objects.order_by("pk").first()
    status = job_type.allowed_statuses.get(life_cycle_state="PENDING")
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO jobs_job (number, description, notes, type_id, status_id, life_cycle_state,
                                  rating_state, created_date, updated_date, version)
            SELECT 'EX' || lpad(g::text, 8, '0'), '', '', %s, %s, 'PENDING', 'PENDING', now(),
                   now(), 1
            FROM generate_series(1, %s::int) g
            """,
            [job_type.pk, status.pk, EXTRA],
        )
    return [f"EX{i:08d}" for i in range(1, EXTRA + 1)]


PENDING_LIST = "/admin/jobs/job/?life_cycle_state__exact=PENDING"


class AdminSession:
    """A browser logged in to the admin as the dispatcher: cookies, and the CSRF token."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.cookies = http.cookiejar.CookieJar()
        self.browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        self.post(
            "/admin/login/",
            {"username": "bench-dispatcher", "password": PASSWORD, "next": "/admin/"},
        )

    def get(self, path: str) -> bytes:
        answer = self.browser.open(self.base + path)
        body = answer.read()
        if answer.status != 200 or b"result_list" not in body:
            raise SystemExit(f"the admin did not answer {path}")
        return body

    def post(self, path: str, form: dict[str, str], expect: bytes = b"") -> bytes:
        if not any(cookie.name == "csrftoken" for cookie in self.cookies):
            self.browser.open(self.base + "/admin/login/").read()
        token = next(cookie.value for cookie in self.cookies if cookie.name == "csrftoken")
        request = urllib.request.Request(
            self.base + path,
            urllib.parse.urlencode({**form, "csrfmiddlewaretoken": token}).encode(),
            headers={"Referer": self.base + path},
        )
        body = self.browser.open(request).read()
        if expect not in body:
            raise SystemExit(f"the admin's answer to {path} lacks {expect!r}")
        return body


class Probes:
    """One client asking for the admin's job list, one starting jobs through the API, each
    timing every answer, until stopped."""

    def __init__(self, port: int, numbers: list[str]) -> None:
        self.port, self.numbers = port, numbers
        self.admin: list[float] = []
        self.api: list[float] = []
        self.stopping = threading.Event()
        self.threads = [
            threading.Thread(target=self.admin_loop),
            threading.Thread(target=self.api_loop),
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(60)

    def admin_loop(self) -> None:
        admin = AdminSession(self.port)
        while not self.stopping.is_set():
            began = time.perf_counter()
            admin.get(PENDING_LIST)
            self.admin.append(time.perf_counter() - began)
            time.sleep(0.2)

    def api_loop(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        connection.request(
            "POST",
            "/crmapi/rest/v2/authentication/token",
            json.dumps({"username": "bench-dispatcher", "password": PASSWORD}),
            {"Content-Type": "application/json"},
        )
        token = json.loads(connection.getresponse().read())["data"]["token"]
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        for number in self.numbers:
            if self.stopping.is_set():
                return
            began = time.perf_counter()
            connection.request(
                "POST",
                "/crmapi/rest/v2/jobs/all_scopes/start_progress",
                json.dumps({"job_identifier": {"number": number}, "fields_set": "id"}),
                headers,
            )
            answer = connection.getresponse()
            answer.read()
            if answer.status != 200:
                raise SystemExit(f"API start answered {answer.status}")
            self.api.append(time.perf_counter() - began)
            time.sleep(0.05)


def peak_memory_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], share: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(share * 100) - 1]


def report(results) -> None:
    print(f"{'jobs':>10} {'raw SQL':>9} {'run':>9} {'x raw':>6} {'jobs/s':>8}  worker peak (MiB)")
    for n, (raw, took, peaks, *_) in results.items():
        memory = ", ".join(f"{peak:.0f}" for peak in peaks)
        print(
            f"{n:>10,} {raw:>8.1f}s {took:>8.1f}s {took / raw:>5.1f}x {n / took:>8,.0f}  {memory}"
        )
    print("\nwhile the run went on (gunicorn, 2 workers):")
    print(f"{'jobs':>10} {'answers':>22} {'count':>6} {'p50':>8} {'p99':>8} {'max':>8}")
    for n, (_, _, _, admin, api, *_) in results.items():
        for name, times in (("admin job list", admin), ("API start_progress", api)):
            print(
                f"{n:>10,} {name:>22} {len(times):>6} {percentile(times, 0.5) * 1000:>6.0f}ms "
                f"{percentile(times, 0.99) * 1000:>6.0f}ms {max(times, default=0) * 1000:>6.0f}ms"
            )
    print("\nthe admin, selecting every pending job (Select all) and starting them:")
    for n, (*_, confirmation, queueing) in results.items():
        print(
            f"{n:>10,} confirmation page {confirmation * 1000:>6.0f}ms, "
            f"confirming (the run queued) {queueing * 1000:>6.0f}ms"
        )
    (small, large) = list(results)
    growth = max(results[large][2]) / max(results[small][2])
    print(
        f"\nworker peak memory at {large:,} against {small:,} jobs: {growth:.2f}x (flat: about 1)"
    )


if __name__ == "__main__":
    main()
