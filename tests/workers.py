"""Real Celery processes for tests that need them: workers and beat on a Redis database of
their own, against the PostgreSQL test database. Used when DATABASE_URL points at PostgreSQL and
REDIS_URL at Redis (CI sets both)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from tests.helpers import ON_POSTGRESQL

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("REDIS_URL", "")
# A Redis database of its own, emptied first: no message from another run reaches these workers.
BROKER = REDIS_URL.rsplit("/", 1)[0] + "/7" if REDIS_URL else ""

needs_workers = [
    pytest.mark.skipif(
        not (ON_POSTGRESQL and REDIS_URL),
        reason="needs PostgreSQL and Redis: DATABASE_URL=postgres://… REDIS_URL=redis://…",
    ),
    pytest.mark.django_db(transaction=True),
]


# As the Procfile runs workers: without the worker-to-worker chatter (gossip, mingle,
# heartbeats) that nothing here uses, and that made reconnecting after a broker restart fail.
QUIET = ("--without-gossip", "--without-mingle", "--without-heartbeat")


def worker_env(**extra: str) -> dict[str, str]:
    database = django_settings.DATABASES["default"]
    return {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
            f"{database['NAME']}"  # the test database these tests write to
        ),
        "REDIS_URL": BROKER,
        "WEBHOOK_SWEEP_SECONDS": "0.5",
        "WEBHOOK_RETRY_BASE_SECONDS": "0.3",
        "WEBHOOK_TIMEOUT_SECONDS": "1",
        "WEBHOOK_LEASE_SECONDS": "2",
        "WEBHOOK_ALLOW_PRIVATE_URLS": "1",
        "LOG_LEVEL": os.environ.get("WORKER_LOG_LEVEL", "WARNING"),
        **extra,
    }


class Processes:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.running: dict[str, subprocess.Popen] = {}
        self.arguments: dict[str, tuple[str, ...]] = {}
        self.env: dict[str, str] = {}  # more settings for the processes started from now on

    def start(self, name: str, *args: str) -> None:
        self.arguments[name] = args
        log = (self.tmp / f"{name}.log").open("a")
        self.running[name] = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", *args],
            env=worker_env(**self.env),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def worker(self) -> None:
        self.start(
            "worker", "worker", *QUIET, "--pool", "threads", "--concurrency", "4", "-l", "INFO"
        )

    def run_worker(self, name: str = "runs") -> None:
        """A worker of background runs, doing one chunk at a time in its own process (so that
        killing it kills the work in hand)."""
        self.start(name, "worker", *QUIET, "--queues", "runs", "--pool", "solo", "-n", f"{name}@%h")

    def beat(self) -> None:
        self.start("beat", "beat", "-l", "INFO", "--schedule", str(self.tmp / "beat-schedule"))

    def restart_the_dead(self) -> list[str]:
        """Start again the processes that exited, as a supervisor (systemd, Kubernetes, a
        Procfile platform) does; return their names."""
        dead = [name for name, process in self.running.items() if process.poll() is not None]
        for name in dead:
            self.start(name, *self.arguments[name])
        return dead

    def kill(self, name: str) -> None:
        process = self.running.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def stop(self) -> None:
        for process in self.running.values():
            process.send_signal(signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def celery_on_redis(tmp_path):
    """Workers and beat on their own Redis database; this process publishes there too."""
    import redis

    from config.celery import app

    redis.Redis.from_url(BROKER).flushdb()
    app.conf.broker_url = BROKER
    app.pool.force_close_all()
    processes = Processes(tmp_path)
    yield processes
    processes.stop()
    app.conf.broker_url = "memory://"
    app.pool.force_close_all()


def wait_for(condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("waited in vain")
