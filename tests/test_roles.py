"""The role groups a deployment starts with (create_roles), and giving people their roles."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission

from jobs.roles import ROLES
from tests.factories import UserFactory
from tests.helpers import run_command

pytestmark = pytest.mark.django_db


def test_the_roles_are_created_with_what_each_may_do():
    code, out, _ = run_command("create_roles")
    assert code == 0
    assert (
        "Dispatchers (views and creates jobs, submits, starts, completes, cancels and assigns "
        "them): created." in out
    )
    dispatcher, technician, viewer = (
        UserFactory(groups=[Group.objects.get(name=ROLES[key].group)])
        for key in ("dispatcher", "technician", "viewer")
    )
    for name in ("add", "submit", "start_progress", "complete", "cancel", "change"):
        assert dispatcher.has_perm(f"jobs.{name}_job"), name
    assert technician.has_perm("jobs.start_progress_job")
    assert technician.has_perm("jobs.complete_job")
    assert not technician.has_perm("jobs.cancel_job")
    assert viewer.has_perm("jobs.view_job")
    assert viewer.has_perm("jobs.view_jobtransitionlog")
    assert not viewer.has_perm("jobs.start_progress_job")


def test_running_it_again_changes_nothing_and_keeps_what_an_administrator_added():
    run_command("create_roles")
    viewers = Group.objects.get(name="Viewers")
    extra = Permission.objects.get(codename="view_event")
    viewers.permissions.add(extra)
    viewers.permissions.remove(Permission.objects.get(codename="view_jobstatus"))

    code, out, _ = run_command("create_roles")

    assert code == 0
    assert "Viewers (views jobs and their history): given view_jobstatus." in out
    assert "Technicians (views jobs, starts and completes them): already complete." in out
    assert Group.objects.filter(name__in=["Dispatchers", "Technicians", "Viewers"]).count() == 3
    assert viewers.permissions.filter(pk=extra.pk).exists()


def test_people_are_given_their_roles_and_let_into_the_admin():
    alice = UserFactory(username="alice", is_staff=False)
    code, out, _ = run_command("create_roles", "--give", "alice=technician")
    assert code == 0
    assert "alice is now in Technicians." in out
    alice.refresh_from_db()
    assert alice.is_staff
    assert list(alice.groups.values_list("name", flat=True)) == ["Technicians"]


@pytest.mark.parametrize(
    ("given", "says"),
    [("alice=janitor", "ROLE one of dispatcher"), ("nobody=viewer", "No user is called 'nobody'")],
)
def test_a_role_or_user_that_does_not_exist_is_refused(given, says):
    UserFactory(username="alice")
    code, _, err = run_command("create_roles", "--give", given)
    assert code == 2
    assert says in err
    assert not Group.objects.exists()
