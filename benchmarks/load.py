"""Load on a real server: gunicorn with 4 workers on PostgreSQL, the API and the command at once.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/jobs make load

It creates a scratch database (<name>_load), 100 pending jobs and a dispatcher, starts gunicorn on
127.0.0.1, then at the same time sends 200 start_progress requests (each job twice, from a pool of
concurrent clients) and runs `start_job_progress` over the same 100 jobs. It checks, and exits
non-zero unless: every job started exactly once, 100 log rows, every HTTP answer OK or
JOB_STATE_CONFLICT, no 5xx. It prints requests per second and p50/p99 latency, then stops the
server and drops the scratch database.

With REDIS_URL set, one webhook endpoint (a receiver in this process) is subscribed and a Celery
worker and beat run beside the server: every started job must reach the receiver (one unique
webhook-id each) within 60 s of the run's end, and events = log rows = started jobs.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse, urlunparse

from common import free_port, wait_until_serving

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
JOBS = 100
CLIENTS = 16
COMMAND_BATCH = 1  # one commit per job: the command then takes as long as the HTTP burst
START = "/crmapi/rest/v2/jobs/all_scopes/start_progress"
PASSWORD = "load-test-only-password"  # a throwaway user in a throwaway database


def main() -> int:
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        print("load.py needs DATABASE_URL pointing at PostgreSQL; nothing was run.")
        return 2
    url = urlparse(base)
    scratch = urlunparse(url._replace(path=f"{url.path.lstrip('/') or 'jobs'}_load"))
    scratch = scratch.replace(f"{url.netloc}/", f"{url.netloc}/", 1)
    name = urlparse(scratch).path.lstrip("/")
    env = {
        **os.environ,
        "DATABASE_URL": scratch,
        "DEBUG": "0",
        "SECRET_KEY": "load-test-only-secret-key-" + "x" * 30,
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOGIN_RATE": "1000/minute",
        "LOG_LEVEL": "ERROR",  # 409s are the expected answer here, not news
        "DJANGO_SETTINGS_MODULE": "config.settings",
        # nothing static is served here; an empty folder keeps WhiteNoise from warning
        "STATIC_ROOT": tempfile.mkdtemp(prefix="jobs-load-static-"),
        "WEBHOOK_ALLOW_PRIVATE_URLS": "1",  # the receiver is on this machine
        "WEBHOOK_SWEEP_SECONDS": "2",
    }
    redis_url = os.environ.get("REDIS_URL", "")
    if redis_url:
        # a Redis database of the run's own, emptied first
        env["REDIS_URL"] = redis_url.rsplit("/", 1)[0] + "/8"
    recreate_database(base, name)
    server = None
    receiver = webhooks = None
    try:
        manage("migrate", "--no-input", "-v", "0", env=env)
        numbers = seed(env)
        if redis_url:
            receiver, webhooks = start_webhooks(env)
        port = free_port()
        server = subprocess.Popen(
            [BIN / "gunicorn", "-c", "gunicorn.conf.py", "config.wsgi"],
            cwd=ROOT,
            env={
                **env,
                "GUNICORN_BIND": f"127.0.0.1:{port}",
                "GUNICORN_WORKERS": "4",
                "GUNICORN_LOG_LEVEL": "warning",
            },
        )
        wait_until_serving(port)
        failed = hammer(port, numbers, env)
        if receiver is not None:
            failed |= check_deliveries(receiver, env)
        if "--restart-database" in sys.argv:
            failed |= restart_under_load(port)
        return failed
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        for process in webhooks or []:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        if receiver is not None:
            receiver.__exit__()
        drop_database(base, name)


def hammer(port: int, numbers: list[str], env: dict[str, str]) -> int:
    token = login(port)
    requests = [number for number in numbers for _ in range(2)]
    random.Random(7).shuffle(requests)
    results: list[tuple[int, str, float]] = []
    lock = threading.Lock()
    go = threading.Event()

    def one(number: str) -> None:
        go.wait()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        began = time.perf_counter()
        connection.request(
            "POST",
            START,
            json.dumps({"job_identifier": {"number": number}, "fields_set": "id,life_cycle_state"}),
            {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        response = connection.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - began
        connection.close()
        try:
            code = json.loads(body)["status"]["code"]
        except (ValueError, KeyError):
            code = f"not an envelope: {body[:80]!r}"
        with lock:
            results.append((response.status, code, elapsed))

    command = [
        sys.executable,
        "manage.py",
        "start_job_progress",
        *numbers,
        "--user",
        "load-dispatcher",
        "--batch-size",
        str(COMMAND_BATCH),
    ]
    command_lines: list[str] = []
    began = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(one, number) for number in requests]
        bulk = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**env, "PYTHONUNBUFFERED": "1"},  # each batch's lines as it commits
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            # The command needs a second to start Django. Its lines come batch by batch, as each
            # commits: the clients are let go at its first line, so both doors race for the rest.
            for line in bulk.stdout:
                command_lines.append(line)
                if not go.is_set():
                    began = time.perf_counter()
                    go.set()
            bulk.wait(timeout=60)
        finally:
            go.set()  # never leave the clients waiting, whatever happened to the command
        for future in futures:
            future.result()
        http_seconds = time.perf_counter() - began

    started_by_api = sum(1 for _, code, _ in results if code == "OK")
    started_by_command = sum(1 for line in command_lines if line.startswith("started "))
    latencies = sorted(elapsed for _, _, elapsed in results)
    codes = sorted({code for _, code, _ in results})
    print(
        f"\n{len(results)} start_progress requests from {CLIENTS} clients against gunicorn "
        f"(4 workers) while start_job_progress ran over the same {len(numbers)} jobs"
    )
    print(f"  requests/s        {len(results) / http_seconds:8.1f}")
    print(f"  latency p50       {statistics.median(latencies) * 1000:8.1f} ms")
    print(f"  latency p99       {latencies[int(len(latencies) * 0.99) - 1] * 1000:8.1f} ms")
    print(f"  answers           {', '.join(codes)}")
    print(f"  started by API    {started_by_api:8d}")
    print(f"  started by command{started_by_command:8d}  (exit {bulk.returncode})")

    per_job, log_rows = database_facts(env)
    failures = []
    if any(status >= 500 for status, _, _ in results):
        failures.append("a 5xx answer")
    if set(codes) - {"OK", "JOB_STATE_CONFLICT"}:
        failures.append(f"unexpected answers {codes}")
    if started_by_api + started_by_command != len(numbers):
        failures.append(f"{started_by_api} + {started_by_command} starts for {len(numbers)} jobs")
    if per_job != {"IN_PROGRESS": len(numbers)}:
        failures.append(f"job states {per_job}")
    if log_rows != len(numbers):
        failures.append(f"{log_rows} log rows")
    print(f"  log rows          {log_rows:8d}   job states {per_job}")
    print(
        "  every job started exactly once: "
        + ("yes" if not failures else "NO: " + "; ".join(failures))
    )
    return 1 if failures else 0


def start_webhooks(env: dict[str, str]):
    """A receiver here, an endpoint for it, and a Celery worker and beat on the run's Redis."""
    import redis

    sys.path.insert(0, str(ROOT))
    from tests.receiver import Receiver

    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    receiver = Receiver(200).__enter__()
    manage(
        "shell",
        "-c",
        "from jobs.models import WebhookEndpoint; "
        f"WebhookEndpoint.objects.create(url={receiver.url!r})",
        env=env,
    )
    schedule = Path(tempfile.mkdtemp(prefix="jobs-load-beat-")) / "schedule"
    celery = [sys.executable, "-m", "celery", "-A", "config"]
    processes = [
        subprocess.Popen(
            [
                *celery,
                "--quiet",
                "worker",
                "--pool",
                "threads",
                "--concurrency",
                "8",
                "-l",
                "WARNING",
            ],
            cwd=ROOT,
            env=env,
        ),
        subprocess.Popen(
            [*celery, "beat", "-l", "WARNING", "--schedule", str(schedule)], cwd=ROOT, env=env
        ),
    ]
    return receiver, processes


def check_deliveries(receiver, env: dict[str, str]) -> int:
    """Every started job's event at the receiver within 60 s; events = log rows = started."""
    ended = time.perf_counter()
    while time.perf_counter() - ended < 60 and len(set(receiver.ids())) < JOBS:
        time.sleep(0.2)
    waited = time.perf_counter() - ended
    unique = len(set(receiver.ids()))
    script = """
import json
from jobs.models import Event, Job, JobTransitionLog
print(json.dumps([Event.objects.filter(type="job.started").count(),
                  JobTransitionLog.objects.count(),
                  Job.objects.filter(life_cycle_state="IN_PROGRESS").count()]))
"""
    events, rows, started = json.loads(
        manage("shell", "-c", script, env=env).strip().splitlines()[-1]
    )
    print("\nWebhooks: one endpoint subscribed, a Celery worker and beat on Redis")
    print(f"  events / log rows / started   {events} / {rows} / {started}")
    print(f"  unique webhook-ids received   {unique:5d}  ({len(receiver.ids())} requests)")
    print(f"  all received within           {waited:5.1f} s of the run's end")
    failures = []
    if not events == rows == started == JOBS:
        failures.append(f"events {events}, log rows {rows}, started {started}")
    if unique != JOBS:
        failures.append(f"{unique} of {JOBS} events reached the receiver in 60 s")
    print("  every event delivered: " + ("yes" if not failures else "NO: " + "; ".join(failures)))
    return 1 if failures else 0


def restart_under_load(port: int) -> int:
    """Restart PostgreSQL while 4 clients keep reading: every answer is 200 or 503 (with
    Retry-After), never another 5xx, and the server recovers by itself."""
    versions = sorted(Path("/etc/postgresql").glob("*"))
    if not versions or os.geteuid() != 0:
        print("\nrestart under load: skipped (needs root and a local PostgreSQL cluster)")
        return 0
    token = login(port)
    answers: Counter = Counter()
    missing_retry_after = 0
    stop = threading.Event()
    lock = threading.Lock()

    def reader() -> None:
        nonlocal missing_retry_after
        while not stop.is_set():
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                connection.request(
                    "GET",
                    "/crmapi/rest/v2/jobs?number_of_results=5&fields_set=id,number",
                    headers={"Authorization": f"Bearer {token}"},
                )
                response = connection.getresponse()
                response.read()
                with lock:
                    answers[response.status] += 1
                    if response.status == 503 and not response.getheader("Retry-After"):
                        missing_retry_after += 1
            except OSError as error:
                with lock:
                    answers[type(error).__name__] += 1
            finally:
                connection.close()

    readers = [threading.Thread(target=reader) for _ in range(4)]
    for thread in readers:
        thread.start()
    time.sleep(1)
    began = time.perf_counter()
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1].name, "main", "restart"],
        check=True,
    )
    restarted_in = time.perf_counter() - began
    wait_until_serving(port)
    recovered_in = time.perf_counter() - began
    time.sleep(1)
    stop.set()
    for thread in readers:
        thread.join(timeout=60)

    print(f"\nPostgreSQL restarted under 4 reading clients (restart took {restarted_in:.1f} s)")
    print(f"  answers           {dict(sorted(answers.items(), key=str))}")
    print(f"  ready again after {recovered_in:8.1f} s")
    failures = [f"{status} answers" for status in answers if status not in (200, 503)]
    if missing_retry_after:
        failures.append(f"{missing_retry_after} 503s without Retry-After")
    if not answers[200]:
        failures.append("no request succeeded")
    print(
        "  only 200 or 503, and recovered: "
        + ("yes" if not failures else "NO: " + "; ".join(failures))
    )
    return 1 if failures else 0


def seed(env: dict[str, str]) -> list[str]:
    script = f"""
from django.contrib.auth.models import Permission, User
from jobs.models import Job, JobStatus, JobType, LifeCycleState
user = User.objects.create_user("load-dispatcher", password={PASSWORD!r})
user.user_permissions.add(*Permission.objects.filter(codename__in=["start_progress_job",
                                                                   "view_job", "view_all_jobs"]))
job_type = JobType.objects.create(name="Load", alternative_code="LOAD")
pending = JobStatus.objects.create(name="Load pending", alternative_code="LOAD-P",
                                   life_cycle_state=LifeCycleState.PENDING)
working = JobStatus.objects.create(name="Load working", alternative_code="LOAD-W",
                                   life_cycle_state=LifeCycleState.IN_PROGRESS)
job_type.allowed_statuses.add(pending, working)
job_type.default_start_status = working
job_type.save()
jobs = [Job(type=job_type, status=pending, life_cycle_state=LifeCycleState.PENDING)
        for _ in range({JOBS})]
for job in jobs:
    job.save()
print(",".join(job.number for job in jobs))
"""
    out = manage("shell", "-c", script, env=env)
    return out.strip().splitlines()[-1].split(",")


def database_facts(env: dict[str, str]) -> tuple[dict[str, int], int]:
    script = """
import json
from django.db.models import Count
from jobs.models import Job, JobTransitionLog
states = dict(Job.objects.values_list("life_cycle_state").annotate(n=Count("id")))
once = JobTransitionLog.objects.values("job").annotate(n=Count("id")).filter(n=1).count()
print(json.dumps([states, JobTransitionLog.objects.count(), once]))
"""
    states, rows, once = json.loads(manage("shell", "-c", script, env=env).strip().splitlines()[-1])
    return states, rows if once == rows else -rows


def login(port: int) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request(
        "POST",
        "/crmapi/rest/v2/authentication/token",
        json.dumps({"username": "load-dispatcher", "password": PASSWORD}),
        {"Content-Type": "application/json"},
    )
    return json.loads(connection.getresponse().read())["data"]["token"]


def manage(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode:
        raise SystemExit(f"manage.py {args[0]} failed:\n{done.stderr}")
    return done.stdout


def _admin_connection(base: str):
    import psycopg

    url = urlparse(base)
    return psycopg.connect(urlunparse(url._replace(path="/postgres")), autocommit=True)


def recreate_database(base: str, name: str) -> None:
    with _admin_connection(base) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def drop_database(base: str, name: str) -> None:
    with _admin_connection(base) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
