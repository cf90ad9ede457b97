"""The roles a deployment starts with, as Django groups: who may look at jobs, who may work on
them, and who dispatches them. `manage.py create_roles` makes them (and the demo data uses them);
an administrator may change any group afterwards in the admin."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import Group, Permission
from django.db import transaction

VIEWING = (
    "view_job",
    "view_jobtype",
    "view_jobstatus",
    "view_jobcancellationreason",
    "view_assignment",
    "view_jobtransitionlog",
    "view_jobupdate",
)
FIELD_WORK = (*VIEWING, "start_progress_job", "complete_job")
DISPATCHING = (
    *FIELD_WORK,
    "add_job",
    "submit_job",
    "cancel_job",
    "change_job",
    "change_assignment",
)


@dataclass(frozen=True)
class Role:
    group: str
    permissions: tuple[str, ...]  # codenames of the jobs app
    summary: str


ROLES = {
    "dispatcher": Role(
        "Dispatchers",
        DISPATCHING,
        "views and creates jobs, submits, starts, completes, cancels and assigns them",
    ),
    "technician": Role("Technicians", FIELD_WORK, "views jobs, starts and completes them"),
    "viewer": Role("Viewers", VIEWING, "views jobs and their history"),
}


@dataclass(frozen=True)
class Created:
    role: str
    group: Group
    new: bool
    added: list[str]  # the permissions this call gave the group


@transaction.atomic
def create_roles() -> list[Created]:
    """Make each role's group, or give an existing one the permissions it lacks. Nothing is taken
    away, so what an administrator added to a group stays."""
    made = []
    for key, role in ROLES.items():
        group, new = Group.objects.get_or_create(name=role.group)
        held = set(group.permissions.values_list("codename", flat=True))
        missing = Permission.objects.filter(
            content_type__app_label="jobs", codename__in=set(role.permissions) - held
        ).order_by("codename")
        group.permissions.add(*missing)
        made.append(Created(key, group, new, [p.codename for p in missing]))
    return made
