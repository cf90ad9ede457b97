"""Upgrading to who-sees-which-job takes no one's access away: the migration gives
`jobs.view_all_jobs` to every user and group that could view jobs, and names each old event's job
and run for the feed."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("jobs", "0007_run_stopped_by")]
AFTER = [("jobs", "0008_access")]


@pytest.fixture
def before_upgrade(transactional_db):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    yield executor.loader.project_state(BEFORE).apps
    MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes())


def upgrade() -> object:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    return executor.loader.project_state(AFTER).apps


def test_whoever_could_view_jobs_still_sees_every_job(before_upgrade):
    apps = before_upgrade
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    User, Group = apps.get_model("auth", "User"), apps.get_model("auth", "Group")
    job_type, _ = ContentType.objects.get_or_create(app_label="jobs", model="job")
    view, _ = Permission.objects.get_or_create(
        content_type=job_type, codename="view_job", defaults={"name": "Can view job"}
    )
    User.objects.create(username="viewer").user_permissions.add(view)
    User.objects.create(username="stranger")  # held nothing, and gets nothing
    Group.objects.create(name="Team").permissions.add(view)
    Group.objects.create(name="Other")

    apps = upgrade()

    Permission = apps.get_model("auth", "Permission")
    view_all = Permission.objects.get(content_type__app_label="jobs", codename="view_all_jobs")
    assert set(view_all.user_set.values_list("username", flat=True)) == {"viewer"}
    assert set(view_all.group_set.values_list("name", flat=True)) == {"Team"}


def test_old_events_name_their_job_and_run(before_upgrade):
    Event = before_upgrade.get_model("jobs", "Event")
    Event.objects.create(
        public_id="evt_job",
        type="job.started",
        timestamp="2026-01-01T00:00Z",
        data={"job": {"id": 7}},
    )
    Event.objects.create(
        public_id="evt_run",
        type="transition_run.finished",
        timestamp="2026-01-01T00:00Z",
        data={"run": {"id": 3}},
    )

    Event = upgrade().get_model("jobs", "Event")

    named = dict(Event.objects.values_list("public_id", "job_id"))
    assert named == {"evt_job": 7, "evt_run": None}
    assert Event.objects.get(public_id="evt_run").run_id == 3
