"""Background runs on real Celery workers, and the faults they must survive: a worker killed with
SIGKILL mid-chunk, the broker down, PostgreSQL restarted. Each ends with the run finished, every
selected job moved once with one log row, and the run's counts equal to the log.

Runs when DATABASE_URL points at PostgreSQL and REDIS_URL at Redis (CI sets both)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from django.db import connection
from django.db.models import Count

from config.celery import app
from jobs.models import Channel, Event, Job, JobTransitionLog, RunState, TransitionRun
from jobs.services import Selection, queue_run
from tests.factories import JobTypeFactory, UserFactory, bulk_pending_jobs
from tests.helpers import free_port
from tests.workers import needs_workers, wait_for

pytestmark = needs_workers

# Small chunks and a short lease, so that faults happen mid-run and are noticed quickly.
RUN_SETTINGS = {
    "JOBS_RUN_CHUNK_SIZE": "1000",
    "JOBS_BULK_BATCH_SIZE": "100",
    "JOBS_RUN_LEASE_SECONDS": "3",
    "JOBS_RUN_SWEEP_SECONDS": "0.5",
}


@pytest.fixture
def workers(celery_on_redis):
    celery_on_redis.env.update(RUN_SETTINGS)
    return celery_on_redis


def start_all(workers) -> None:
    """Two run workers, as the Procfile's `runs` with 2 processes, the webhook worker and beat."""
    workers.run_worker("runs-1")
    workers.run_worker("runs-2")
    workers.worker()
    workers.beat()


def queue_start(count: int) -> TransitionRun:
    job_type = JobTypeFactory()
    bulk_pending_jobs(job_type, count)
    user = UserFactory(
        username="dispatcher", permissions=["view_all_jobs", "start_progress_job", "complete_job"]
    )
    return queue_run(
        transition="start_progress",
        selection=Selection.of_filter({"life_cycle_state": "PENDING"}),
        user=user,
        channel=Channel.ADMIN,
    )


def run_state(run: TransitionRun) -> tuple[str, int]:
    run.refresh_from_db()
    return run.state, run.moved


def assert_moved_once_and_counted(run: TransitionRun, count: int) -> None:
    run.refresh_from_db()
    assert (run.state, run.selected, run.moved, run.skipped) == (
        RunState.FINISHED,
        count,
        count,
        {},
    )
    per_job = JobTransitionLog.objects.values("job").annotate(n=Count("id"))
    assert per_job.count() == count
    assert set(per_job.values_list("n", flat=True)) == {1}
    assert JobTransitionLog.objects.filter(run=run).count() == count
    assert not Job.objects.filter(life_cycle_state="PENDING").exists()
    assert Event.objects.filter(type="job.started").count() == count
    finished = Event.objects.get(type="transition_run.finished")
    assert finished.data["run"]["moved"] == count


def test_two_workers_carry_out_a_run_and_it_announces_its_end(workers):
    start_all(workers)
    run = queue_start(5_000)
    wait_for(lambda: run_state(run)[0] == RunState.FINISHED, seconds=120)
    assert_moved_once_and_counted(run, 5_000)
    assert TransitionRun.objects.get().started_date is not None


def test_a_worker_killed_mid_chunk_leaves_nothing_undone_or_done_twice(workers):
    start_all(workers)
    run = queue_start(8_000)
    wait_for(lambda: run_state(run)[1] >= 500, seconds=60)
    workers.kill("runs-1")  # SIGKILL, holding a chunk's lease in the middle of it
    assert run_state(run)[1] < 8_000
    wait_for(lambda: run_state(run)[0] == RunState.FINISHED, seconds=180)
    assert_moved_once_and_counted(run, 8_000)


class OwnRedis:
    """A Redis server of the test's own, to take down and bring back (empty, as a broker that
    lost its messages)."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            cwd=self.tmp,
            stdout=subprocess.DEVNULL,
        )
        time.sleep(0.5)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


needs_redis_server = pytest.mark.skipif(
    not Path("/usr/bin/redis-server").exists(), reason="needs redis-server"
)


@pytest.fixture
def own_broker(workers, tmp_path):
    broker = OwnRedis(tmp_path)
    broker.start()
    workers.env["REDIS_URL"] = broker.url
    app.conf.broker_url = broker.url
    app.pool.force_close_all()
    yield broker
    broker.stop()


@needs_redis_server
def test_a_run_goes_on_while_the_broker_is_down_and_the_workers_come_back(workers, own_broker):
    start_all(workers)
    run = queue_start(8_000)
    wait_for(lambda: run_state(run)[1] >= 500, seconds=60)
    own_broker.stop()
    time.sleep(float(os.environ.get("BROKER_DOWN_SECONDS", "10")))
    assert run_state(run)[0] in (RunState.RUNNING, RunState.FINISHED)
    own_broker.start()
    # The webhook worker may have exited on the broker's loss (docs/deploy.md): its supervisor
    # starts it again, and with it beat's sweeps.
    time.sleep(1)
    workers.restart_the_dead()
    wait_for(lambda: run_state(run)[0] == RunState.FINISHED, seconds=180)
    assert_moved_once_and_counted(run, 8_000)
    # The workers reconnected: the next run is carried out too (its first message may be lost
    # while the new broker has no queues declared yet; the sweep sends it again).
    later = queue_run(
        transition="complete",
        selection=Selection.of_filter({"life_cycle_state": "IN_PROGRESS"}),
        user=run.requested_by,
        channel=Channel.API,
    )
    wait_for(lambda: run_state(later) == (RunState.FINISHED, 8_000), seconds=120)


@needs_redis_server
def test_a_run_whose_messages_the_broker_lost_is_sent_out_again_by_the_sweep(workers, own_broker):
    run = queue_start(3_000)  # its message waits in the broker: no worker yet
    own_broker.stop()
    own_broker.start()  # empty: the message is lost
    workers.run_worker("runs-1")
    workers.worker()
    workers.beat()
    wait_for(lambda: run_state(run)[0] == RunState.FINISHED, seconds=120)
    assert_moved_once_and_counted(run, 3_000)


def restart_postgresql() -> None:
    """A real restart where this machine runs the cluster (CI, as root); else every other
    connection to the database dropped at once, which is what clients see of a restart."""
    versions = sorted(Path("/etc/postgresql").glob("*"))
    if versions and os.geteuid() == 0:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1].name, "main", "restart"],
            check=True,
        )
        connection.close()
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def test_a_run_survives_a_postgresql_restart(workers):
    start_all(workers)
    run = queue_start(8_000)
    wait_for(lambda: run_state(run)[1] >= 500, seconds=60)
    assert run_state(run)[1] < 8_000  # restarted mid-run
    restart_postgresql()

    def finished() -> bool:
        try:
            return run_state(run)[0] == RunState.FINISHED
        except Exception:  # the database is coming back
            connection.close()
            return False

    wait_for(finished, seconds=180)
    assert_moved_once_and_counted(run, 8_000)
