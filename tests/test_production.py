"""Running it the documented production way: `check --deploy` clean, the Procfile's web process
(collectstatic, gunicorn, WhiteNoise) serving a styled admin and working docs, health, metrics,
JSON logs with request ids and no secrets, a shared throttle, and what happens when the database
or Redis goes away."""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.conf import settings
from django.db import OperationalError
from django.test import override_settings

from tests.factories import JobFactory
from tests.helpers import LOGIN, ON_POSTGRESQL, by_identifier_url, code_of, free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
REDIS_URL = os.environ.get("REDIS_URL", "")


def documented_production_environment() -> dict[str, str]:
    """The uncommented NAME=value lines of .env.example."""
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^([A-Z_]+)=(.*)$", line)
        if match:
            values[match.group(1)] = match.group(2)
    return values


def request(port, method, path, body=None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    answer = response.status, dict(response.getheaders()), response.read()
    connection.close()
    return answer


def wait_until_ready(port: int, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError("the server exited")
        try:
            if request(port, "GET", "/health/ready")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("the server did not become ready")


class Served:
    def __init__(self, command, env, log: Path) -> None:
        self.port = int(env["PORT"])
        self.log = log
        self._sink = log.open("w")
        self.process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=self._sink, stderr=subprocess.STDOUT
        )
        wait_until_ready(self.port, self.process)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        self._sink.close()


def production_env(tmp: Path, **extra: str) -> dict[str, str]:
    inherited = {name: value for name, value in os.environ.items() if name != "REDIS_URL"}
    env = {
        **inherited,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "ALLOWED_HOSTS": "127.0.0.1",
        "STATIC_ROOT": str(tmp / "static"),
        "PORT": str(free_port()),
        "HOST": "127.0.0.1",
        "GUNICORN_WORKERS": "2",
        **extra,
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v0"], env=env, cwd=ROOT, check=True
    )
    return env


def create_user(env, username, password, *codenames) -> None:
    script = (
        "from django.contrib.auth.models import Permission, User\n"
        f"u = User.objects.create_user({username!r}, password={password!r})\n"
        f"u.user_permissions.add(*Permission.objects.filter(codename__in={list(codenames)!r}))\n"
    )
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-v0", "-c", script], env=env, cwd=ROOT, check=True
    )


# --- settings ---------------------------------------------------------------------------------


def test_check_deploy_is_clean_with_the_documented_production_environment(tmp_path):
    env = {
        **os.environ,
        **documented_production_environment(),
        "SECRET_KEY": secrets.token_urlsafe(50),  # the example's placeholder is not a secret
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    checked = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "no issues" in checked.stdout


@pytest.mark.django_db
@override_settings(SECURE_SSL_REDIRECT=True, SECURE_PROXY_SSL_HEADER=None)
def test_a_forged_forwarded_proto_is_not_believed_without_a_proxy(client):
    response = client.get("/crmapi/rest/v2/schema", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 301
    assert response["Location"].startswith("https://")


@pytest.mark.django_db
@override_settings(
    SECURE_SSL_REDIRECT=True, SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")
)
def test_behind_a_proxy_its_forwarded_proto_is_believed(client):
    assert client.get("/health/live", HTTP_X_FORWARDED_PROTO="https").status_code == 200
    assert client.get("/crmapi/rest/v2/schema", HTTP_X_FORWARDED_PROTO="https").status_code == 200


# --- the Procfile's web process, as `make serve` runs it --------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("served")
    env = production_env(tmp, METRICS_ENABLED="1")
    create_user(env, "dispatcher", "s3cret-Passw0rd-for-logs", "view_job", "start_progress_job")
    server = Served([str(BIN / "honcho"), "start", "web"], env, tmp / "server.log")
    yield server
    server.stop()


def test_the_admin_is_styled_by_compressed_hashed_static_files(served):
    _, _, page = request(served.port, "GET", "/admin/login/")
    (stylesheet,) = re.findall(rb'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', page)
    status, headers, _ = request(
        served.port, "GET", stylesheet.decode(), headers={"Accept-Encoding": "gzip"}
    )
    assert status == 200
    assert headers["Content-Type"].startswith("text/css")
    assert headers.get("Content-Encoding") in {"gzip", "br"}
    assert "max-age=315360000" in headers["Cache-Control"]  # hashed: cached for good


def test_runserver_with_debug_off_serves_the_admin_styled(tmp_path):
    env = production_env(tmp_path)
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"],
        env=env,
        cwd=ROOT,
        check=True,
    )
    address = f"127.0.0.1:{env['PORT']}"
    command = [sys.executable, "manage.py", "runserver", "--noreload", address]
    server = Served(command, env, tmp_path / "runserver.log")
    try:
        _, _, page = request(server.port, "GET", "/admin/login/")
        (stylesheet,) = re.findall(rb'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', page)
        status, headers, _ = request(server.port, "GET", stylesheet.decode())
        assert status == 200
        assert headers["Content-Type"].startswith("text/css")
    finally:
        server.stop()


def test_the_docs_page_loads_its_swagger_ui_assets(served):
    status, _, page = request(served.port, "GET", "/crmapi/rest/v2/docs")
    assert status == 200
    assets = re.findall(rb'(?:src|href)="(/static/[^"]+)"', page)
    assert any(b"swagger-ui-bundle" in asset for asset in assets)
    for asset in assets:
        assert request(served.port, "GET", asset.decode())[0] == 200, asset


def test_health_answers_every_method_without_authentication(served):
    status, _, body = request(served.port, "GET", "/health/ready")
    assert (status, json.loads(body)) == (
        200,
        {
            "status": "ok",
            "checks": {"database": "ok", "schema": "ok", "cache": "ok", "broker": "ok"},
        },
    )
    assert request(served.port, "GET", "/health/live")[0] == 200
    assert request(served.port, "HEAD", "/health/live")[0] == 200
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        status, headers, _ = request(served.port, method, "/health/ready")
        assert (status, headers["Allow"]) == (405, "GET, HEAD")


def test_metrics_add_up_every_worker_and_count_database_queries(served):
    for _ in range(6):
        request(served.port, "GET", "/health/ready")
        request(served.port, "GET", "/crmapi/rest/v2/jobs")
    status, _, page = request(served.port, "GET", "/metrics")
    assert status == 200
    text = page.decode()
    assert "django_http_requests_total_by_method_total" in text
    assert "django_db_execute_total" in text  # the database backend is wrapped
    by_view = "django_http_requests_total_by_view_transport_method_total"
    for view in ("health-ready", "job-list"):
        counted = re.findall(rf'{by_view}\{{[^}}]*view="{view}"[^}}]*\}} ([0-9.]+)', text)
        assert sum(float(n) for n in counted) >= 6, view  # from both workers, added up
    assert re.search(r'django_db_execute_total\{alias="default",vendor="[a-z]+"\} [1-9]', text)


def test_a_host_not_allowed_is_a_400_in_the_envelope(served):
    status, _, body = request(served.port, "GET", "/crmapi/rest/v2/jobs", headers={"Host": "evil"})
    assert (status, json.loads(body)["status"]["code"]) == (400, "INVALID_PARAMETER")


def test_health_probes_by_address_are_answered_and_nothing_else_is(served):
    # A balancer or a Kubernetes probe sends the server's address, not an allowed name.
    by_address = {"Host": "10.1.2.3:8000"}
    for path in ("/health/live", "/health/ready", "/health/ready/"):
        status, _, body = request(served.port, "GET", path, headers=by_address)
        assert (status, json.loads(body)["status"]) == (200, "ok"), path
    assert request(served.port, "GET", "/admin/login/", headers=by_address)[0] == 400
    assert request(served.port, "GET", "/health/other", headers=by_address)[0] == 400


def test_each_request_logs_one_json_line_with_its_id_and_no_secret(served):
    password = "s3cret-Passw0rd-for-logs"
    body = json.dumps({"username": "dispatcher", "password": password}).encode()
    status, headers, answer = request(
        served.port, "POST", LOGIN, body, {"Content-Type": "application/json"}
    )
    assert status == 200
    token = json.loads(answer)["data"]["token"]
    body = json.dumps({"token": token, "job_identifier": {"number": "JB99999"}}).encode()
    status, headers, _ = request(
        served.port,
        "POST",
        by_identifier_url("start_progress"),
        body,
        {"Content-Type": "application/json", "X-Request-ID": "trace-me-123"},
    )
    assert (status, headers["X-Request-ID"]) == (404, "trace-me-123")
    time.sleep(0.5)  # let the log reach the file

    log = served.log.read_text()
    assert password not in log
    assert token not in log
    assert token.split(".")[2] not in log  # not even the signature
    lines = [json.loads(line.split("| ", 1)[1]) for line in log.splitlines() if '| {"' in line]
    ours = [line for line in lines if line.get("request_id") == "trace-me-123"]
    (logged,) = [line for line in ours if line["event"] == "request"]
    assert logged | {"status": 404, "method": "POST"} == logged
    assert logged["path"] == by_identifier_url("start_progress")
    # A job not found is a refusal of access too: the door, who, and the job as it was asked for.
    (refused,) = [line for line in ours if line["event"] == "access refused"]
    assert refused | {"door": "api", "reason": "JOB_NOT_FOUND"} == refused
    assert "JB99999" in refused["target"]


# --- a shared cache --------------------------------------------------------------------------


@pytest.mark.skipif(
    not REDIS_URL, reason="needs Redis: run with REDIS_URL=redis://127.0.0.1:6379/0"
)
def test_login_throttling_holds_across_four_workers_with_redis(tmp_path):
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    env = production_env(tmp_path, REDIS_URL=REDIS_URL, GUNICORN_WORKERS="4")
    server = Served(
        [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "config.wsgi"], env, tmp_path / "log"
    )
    try:
        body = json.dumps({"username": "nobody", "password": "wrong"}).encode()

        def attempt(_):
            return request(server.port, "POST", LOGIN, body, {"Content-Type": "application/json"})[
                0
            ]

        with ThreadPoolExecutor(11) as pool:
            answers = Counter(pool.map(attempt, range(11)))
    finally:
        server.stop()
    assert answers == {401: 10, 429: 1}
    answered_by = {
        json.loads(line)["process"]
        for line in (tmp_path / "log").read_text().splitlines()
        if line.startswith("{") and '"path": "/crmapi/rest/v2/authentication/token"' in line
    }
    assert len(answered_by) > 1, "every login went to one worker: the test proved nothing"


@pytest.mark.django_db
def test_with_redis_unreachable_the_api_answers_readiness_fails_and_throttling_falls_back(
    client, api, caplog
):
    unreachable = {
        "default": {
            "BACKEND": "jobs.cache.FallbackRedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.2},
        }
    }
    with override_settings(CACHES=unreachable):
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["cache"].startswith("failing")
        answers = [
            api.post(LOGIN, {"username": "x", "password": "y"}, format="json").status_code
            for _ in range(11)
        ]
    assert answers == [401] * 10 + [429]
    assert any("Redis cache unreachable" in r.getMessage() for r in caplog.records)


# --- the database going away -------------------------------------------------------------------


@pytest.mark.django_db
def test_a_database_that_cannot_be_reached_is_a_503_with_retry_after(
    as_dispatcher, client, dispatcher, monkeypatch
):
    job = JobFactory()

    def gone(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("jobs.api.transitions.job_transition", gone)
    response = as_dispatcher.post(
        by_identifier_url("start_progress"), {"job_identifier": {"id": job.pk}}, format="json"
    )
    assert code_of(response) == (503, "SERVICE_UNAVAILABLE")
    assert response["Retry-After"] == "2"

    monkeypatch.setattr("jobs.admin.jobs.JobAdmin.get_queryset", gone)
    client.force_login(dispatcher)
    client.raise_request_exception = False
    page = client.get("/admin/jobs/job/")
    assert (page.status_code, page["Retry-After"]) == (503, "2")


@pytest.mark.skipif(not ON_POSTGRESQL, reason="kills PostgreSQL connections")
def test_connections_killed_under_load_give_503s_never_500s_and_recover(tmp_path):
    """What a PostgreSQL restart does to a server: every connection dropped at once."""
    import psycopg

    base = settings.DATABASES["default"]
    scratch = f"{base['NAME']}_restart"
    admin = f"postgres://{base['USER']}@{base['HOST']}:{base['PORT']}/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{scratch}"')
    try:
        env = production_env(
            tmp_path,
            DATABASE_URL=f"postgres://{base['USER']}@{base['HOST']}:{base['PORT']}/{scratch}",
            GUNICORN_WORKERS="4",
        )
        create_user(env, "viewer", "viewer-pw-123", "view_job")
        server = Served(
            [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "config.wsgi"], env, tmp_path / "l"
        )
        try:
            _, _, body = request(
                server.port,
                "POST",
                LOGIN,
                json.dumps({"username": "viewer", "password": "viewer-pw-123"}).encode(),
                {"Content-Type": "application/json"},
            )
            auth = {"Authorization": f"Bearer {json.loads(body)['data']['token']}"}
            stop = threading.Event()
            answers: Counter = Counter()

            def client_loop():
                while not stop.is_set():
                    status, headers, _ = request(
                        server.port, "GET", "/crmapi/rest/v2/jobs", None, auth
                    )
                    answers[status] += 1
                    if status == 503:
                        assert headers["Retry-After"]

            clients = [threading.Thread(target=client_loop) for _ in range(4)]
            for thread in clients:
                thread.start()
            with psycopg.connect(admin, autocommit=True) as connection:
                for _ in range(6):
                    time.sleep(0.3)
                    connection.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()",
                        [scratch],
                    )
            time.sleep(0.5)
            stop.set()
            for thread in clients:
                thread.join(timeout=30)
            after = request(server.port, "GET", "/crmapi/rest/v2/jobs", None, auth)[0]
        finally:
            server.stop()
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
    assert set(answers) <= {200, 503}, answers
    assert answers[200] > 0
    assert after == 200


# --- metrics and the batch log ------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_count_transitions_for_allowed_networks_only(client, dispatcher):
    from jobs.models import Channel
    from jobs.services import job_bulk_transition

    jobs = JobFactory.create_batch(2)
    done = JobFactory(life_cycle_state="COMPLETED")
    job_bulk_transition(
        transition="start_progress",
        jobs=[j.number for j in [*jobs, done]],
        user=dispatcher,
        channel=Channel.COMMAND,
    )
    with override_settings(METRICS_ENABLED=True):
        page = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
        assert page.status_code == 200
        text = page.content.decode()
        assert (
            'jobs_transitions_total{channel="command",outcome="started",'
            'transition="start_progress"}' in text
        )
        assert 'outcome="JOB_STATE_CONFLICT"' in text
        assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 404
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 404


@pytest.mark.django_db
def test_each_bulk_batch_logs_one_line_with_its_outcomes(dispatcher, caplog):
    from jobs.models import Channel
    from jobs.services import job_bulk_transition

    jobs = JobFactory.create_batch(3)
    with caplog.at_level("INFO", logger="jobs.services"):
        job_bulk_transition(
            transition="start_progress",
            jobs=[j.number for j in jobs],
            user=dispatcher,
            channel=Channel.ADMIN,
            batch_size=2,
        )
    batches = [r for r in caplog.records if r.getMessage() == "transition batch"]
    assert [(r.jobs, r.outcomes) for r in batches] == [(2, {"started": 2}), (1, {"started": 1})]
    assert {(r.transition, r.channel) for r in batches} == {("start_progress", "admin")}


def settings_with(setting: str = "DATABASES", **variables: str) -> subprocess.CompletedProcess:
    """The settings module read in a process of its own with these environment variables; its
    standard output is `setting`'s value."""
    env = {**os.environ, "DATABASE_URL": "postgres://u@db.internal:5432/jobs"}
    for name in ("DATABASE_PREPARED_STATEMENTS", "METRICS_ENABLED"):
        env.pop(name, None)
    env.update(variables)
    return subprocess.run(
        [sys.executable, "-c", f"from config import settings; print(settings.{setting})"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    ("value", "prepares", "binds_every_statement_on_the_server"),
    [
        (None, True, True),  # every statement, through Django's documented server-side binding
        ("requests", True, True),  # an older default's name
        ("all", True, True),
        ("1", True, True),
        ("none", False, False),
        ("0", False, False),
    ],
)
def test_prepared_statements_on_postgresql(value, prepares, binds_every_statement_on_the_server):
    variables = {} if value is None else {"DATABASE_PREPARED_STATEMENTS": value}
    options = settings_with(**variables).stdout
    assert ("'prepare_threshold': 1" in options) is prepares
    assert ("'server_side_binding': True" in options) is binds_every_statement_on_the_server


@pytest.mark.parametrize("enabled", ["0", "1"])
def test_requests_are_counted_for_prometheus_only_when_metrics_are_enabled(enabled):
    middleware = settings_with("MIDDLEWARE", METRICS_ENABLED=enabled).stdout
    assert middleware.count("jobs.metrics.MetricsMiddleware") == (1 if enabled == "1" else 0)


def test_an_unknown_prepared_statements_value_is_refused_at_start():
    started = settings_with(DATABASE_PREPARED_STATEMENTS="some")
    assert started.returncode != 0
    assert "DATABASE_PREPARED_STATEMENTS must be all or none" in started.stderr


@pytest.mark.django_db
def test_a_database_missing_migrations_is_not_ready(client, monkeypatch):
    from django.db.migrations.executor import MigrationExecutor

    from jobs import health

    monkeypatch.setattr(health, "_migrated", False)
    # What `migrate --check` finds on a database the last migration did not reach.
    monkeypatch.setattr(
        MigrationExecutor, "migration_plan", lambda self, targets, **kw: [("0005", False)]
    )
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["schema"] == "failing: NotMigrated"
    monkeypatch.undo()
    monkeypatch.setattr(health, "_migrated", False)
    assert client.get("/health/ready").json()["checks"]["schema"] == "ok"


def test_make_graph_without_graphviz_says_what_it_needs_in_one_line(tmp_path):
    # No directory on PATH: the shell finds no `dot`.
    done = subprocess.run(
        ["/usr/bin/make", "--no-print-directory", "graph"],
        cwd=ROOT,
        env={"PATH": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert "needs Graphviz's dot" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert not (ROOT / "docs" / "life_cycle").exists()


def test_logs_go_to_standard_error_once(tmp_path):
    from django.conf import settings as django_settings

    assert django_settings.CELERY_WORKER_HIJACK_ROOT_LOGGER is False
    script = (
        "import django, logging; django.setup(); "
        "logging.getLogger('django.security.csrf').warning('only-once')"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "config.settings"},
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.stdout == ""
    assert done.stderr.count("only-once") == 1


def test_make_serve_listens_on_the_port_everything_else_names(tmp_path):
    # honcho's own default is 5000: the Makefile hands it PORT, so the web process of
    # `make serve` listens where `make run`, .env.example and JOBS_SITE_URL's links say.
    planned = subprocess.run(
        ["make", "-n", "serve"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    (start,) = [line for line in planned.splitlines() if "honcho start" in line]
    port = re.match(r"PORT=(\d+) ", start).group(1)
    procfile = tmp_path / "Procfile"
    procfile.write_text("web: python -c \"import os; print('on', os.environ['PORT'])\"\n")
    served = subprocess.run(
        [str(Path(sys.executable).parent / "honcho"), "-f", str(procfile), "start", "web"],
        cwd=tmp_path,
        env={**os.environ, "PORT": port},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout
    assert "on 8000" in served
    assert "# PORT=8000" in (ROOT / ".env.example").read_text()
    assert settings.JOBS_SITE_URL == "http://127.0.0.1:8000"
