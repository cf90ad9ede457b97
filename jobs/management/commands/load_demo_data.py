"""Demo data for `make run`. Safe to run again: it only adds what is missing.

DEMO ONLY: the passwords below are public, for a laptop. Never load this into a real database.
"""

import random
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from jobs.models import (
    AllowedStatus,
    Assignment,
    Channel,
    ExpirationSetting,
    FulfillmentScope,
    Job,
    JobCancellationReason,
    JobStatus,
    JobTransitionLog,
    JobType,
    LifeCycleState,
)
from jobs.roles import create_roles
from jobs.transitions import TRANSITIONS

DEMO_USERS = {
    # username: (password, role)
    "admin": ("admin-demo-pw", "superuser"),
    "dispatcher": (
        "dispatcher-demo-pw",
        "every job: may view, create, submit, start, complete, cancel and edit them",
    ),
    "technician": ("technician-demo-pw", "every job: may view, start and complete, not cancel"),
    "viewer": ("viewer-demo-pw", "every job: may only view them"),
    "north-dispatcher": ("north-demo-pw", "as dispatcher, for the North field team's jobs"),
    "north-technician": ("north-demo-pw", "as technician, for the North field team's jobs"),
    "south-dispatcher": ("south-demo-pw", "as dispatcher, for the South field team's jobs"),
    "south-technician": ("south-demo-pw", "as technician, for the South field team's jobs"),
}

# Each demo user's role (jobs.roles): the group it is put in.
DEMO_ROLES = {
    "dispatcher": "dispatcher",
    "technician": "technician",
    "viewer": "viewer",
    "north-dispatcher": "dispatcher",
    "north-technician": "technician",
    "south-dispatcher": "dispatcher",
    "south-technician": "technician",
}
UNITS = ["North field team", "South field team"]
# The head office sees every job; each unit's people see their unit's (jobs.visibility).
SEES_EVERY_JOB = ("dispatcher", "technician", "viewer")
UNIT_OF = {
    "north-dispatcher": UNITS[0],
    "north-technician": UNITS[0],
    "south-dispatcher": UNITS[1],
    "south-technician": UNITS[1],
}

# code: (name, description); the first is every type's default but the survey's.
CANCELLATION_REASONS = {
    "CUSTOMER": ("Customer request", "The customer called the job off."),
    "NO_ACCESS": ("No access", "The technician could not get into the site."),
    "DUPLICATE": ("Duplicate", "Another job covers the same work."),
}

# code: (name, scope, expiration, days, has defaults: statuses for each transition and a reason)
DEMO_TYPES = {
    "INSTALL": (
        "New installation",
        FulfillmentScope.NEW_SUBSCRIPTION,
        ExpirationSetting.NONE,
        None,
        True,
    ),
    "ACTIVATE": (
        "Activation visit",
        FulfillmentScope.ACTIVATE_SUBSCRIPTION,
        ExpirationSetting.ON_START_PROGRESS,
        2,
        True,
    ),
    "REPAIR": (
        "Repair",
        FulfillmentScope.SUBSCRIPTION_MAINTAINANCE,
        ExpirationSetting.X_DAYS_AFTER_JOB_CREATION,
        14,
        True,
    ),
    "SWAP": (
        "Equipment swap",
        FulfillmentScope.SWAP_INSTALLED_ITEMS,
        ExpirationSetting.NONE,
        None,
        True,
    ),
    "SURVEY": (
        "Site survey",
        FulfillmentScope.GENERIC_PURPOSE,
        ExpirationSetting.NONE,
        None,
        False,
    ),
}

# Each type gets one status per state (code TYPE-STATE) and shares the field statuses below.
SHARED_IN_PROGRESS = {"ONSITE": "On site", "ENROUTE": "En route"}
STATE_WORDS = {
    LifeCycleState.DRAFT: "Draft",
    LifeCycleState.PENDING: "Awaiting dispatch",
    LifeCycleState.IN_PROGRESS: "Working",
    LifeCycleState.COMPLETED: "Done",
    LifeCycleState.CANCELLED: "Called off",
}
# The transitions that brought a demo job to its state, with minutes after its creation: its
# history shows them, as it would for a job that lived through them.
PATHS = {
    LifeCycleState.DRAFT: [],
    LifeCycleState.PENDING: [("submit", 10)],
    LifeCycleState.IN_PROGRESS: [("submit", 10), ("start_progress", 30)],
    LifeCycleState.COMPLETED: [("submit", 10), ("start_progress", 30), ("complete", 90)],
    LifeCycleState.CANCELLED: [("submit", 10), ("cancel", 60)],
}
JOB_COUNT = 200


class Command(BaseCommand):
    help = "Load demo statuses, types, reasons, users and 200 jobs (idempotent; demo only)."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        users = self.users()
        types = self.types()
        created = self.jobs(types, users) if not Job.objects.exists() else 0
        self.stdout.write(f"Demo data ready: {len(types)} job types, {created} jobs created.")
        counts = dict(
            Job.objects.order_by().values_list("life_cycle_state").annotate(n=Count("pk"))
        )
        self.stdout.write(
            "Jobs by state: "
            + ", ".join(f"{state} {counts.get(state, 0)}" for state in LifeCycleState.values)
            + "."
        )
        self.stdout.write("Demo logins (demo only):")
        for username, (password, role) in DEMO_USERS.items():
            self.stdout.write(f"  {username} / {password}  ({role})")

    def users(self) -> dict[str, Any]:
        users = {}
        for username, (password, _role) in DEMO_USERS.items():
            user, created = get_user_model().objects.get_or_create(
                username=username,
                defaults={
                    "email": f"{username}@example.com",
                    "first_name": username.title(),
                    "last_name": "Demo",
                    "is_staff": True,
                    "is_superuser": username == "admin",
                },
            )
            if created:
                user.set_password(password)
                user.save()
            users[username] = user
        for created in create_roles():
            for username, role in DEMO_ROLES.items():
                if role == created.role:
                    users[username].groups.add(created.group)
        view_all = Permission.objects.get(content_type__app_label="jobs", codename="view_all_jobs")
        for username in SEES_EVERY_JOB:
            users[username].user_permissions.add(view_all)
        for username, unit in UNIT_OF.items():
            users[username].groups.add(Group.objects.get_or_create(name=unit)[0])
        return users

    def types(self) -> list[JobType]:
        shared = [
            JobStatus.objects.get_or_create(
                alternative_code=code,
                defaults={"name": name, "life_cycle_state": LifeCycleState.IN_PROGRESS},
            )[0]
            for code, name in SHARED_IN_PROGRESS.items()
        ]
        reasons = [
            JobCancellationReason.objects.get_or_create(
                alternative_code=code, defaults={"name": name, "description": description}
            )[0]
            for code, (name, description) in CANCELLATION_REASONS.items()
        ]
        types = []
        for code, (name, scope, expiration, days, has_defaults) in DEMO_TYPES.items():
            job_type, _ = JobType.objects.get_or_create(
                alternative_code=code,
                defaults={
                    "name": name,
                    "fulfillment_scope": scope,
                    "expiration_settings": expiration,
                    "expiration_days": days,
                    "description": f"{name} ({scope.label.lower()})",
                },
            )
            own = [
                JobStatus.objects.get_or_create(
                    alternative_code=f"{code}-{state.value}",
                    defaults={"name": f"{name}: {word}", "life_cycle_state": state},
                )[0]
                for state, word in STATE_WORDS.items()
            ]
            # In sequence: the type's own statuses in life cycle order, then the shared field
            # statuses, after its own "Working" (an update moves a job on, never back).
            allowed = {status: position for position, status in enumerate(own)}
            allowed.update(dict.fromkeys(shared, len(own)))
            held = set(job_type.allowed_statuses.all())
            AllowedStatus.objects.bulk_create(
                AllowedStatus(job_type=job_type, status=status, position=position)
                for status, position in allowed.items()
                if status not in held
            )
            if has_defaults:
                in_state = {status.life_cycle_state: status for status in own}
                for declared in TRANSITIONS.values():
                    if getattr(job_type, declared.default_status_field) is None:
                        setattr(job_type, declared.default_status_field, in_state[declared.target])
                if job_type.default_create_status is None:
                    job_type.default_create_status = in_state[LifeCycleState.DRAFT]
                if job_type.default_cancellation_reason is None:
                    job_type.default_cancellation_reason = reasons[0]
                job_type.save()
            types.append(job_type)
        return types

    def jobs(self, types: list[JobType], users: dict[str, Any]) -> int:
        rng = random.Random(19)  # the same demo every time
        reasons = list(JobCancellationReason.objects.order_by("pk"))
        statuses = {
            (s.job_type_id, s.status.life_cycle_state): s.status_id
            for s in AllowedStatus.objects.select_related("status")
            if s.status.alternative_code not in SHARED_IN_PROGRESS
        }
        units = [Group.objects.get_or_create(name=name)[0] for name in UNITS]
        # Mostly pending, so there is plenty to start.
        states = [LifeCycleState.PENDING] * 6 + [
            LifeCycleState.DRAFT,
            LifeCycleState.IN_PROGRESS,
            LifeCycleState.COMPLETED,
            LifeCycleState.CANCELLED,
        ]
        now = timezone.now()
        history: list[JobTransitionLog] = []
        for index in range(JOB_COUNT):
            job_type = rng.choice(types)
            state = rng.choice(states)
            created = now - timedelta(hours=JOB_COUNT - index)
            # The draws keep their order, so the demo stays the same job by job.
            description = (
                f"{job_type.name} at {rng.randint(1, 250)} "
                f"{rng.choice(['Main St', 'Harbour Rd', 'Hill Ave', 'Station Sq'])}"
            )
            scheduled = created + timedelta(days=rng.randint(1, 10))
            job = Job(
                description=description,
                type=job_type,
                status_id=statuses[(job_type.pk, state)],
                life_cycle_state=state,
                scheduled_date=scheduled,
                created_date=created,
                updated_date=created,
                created_by_user=users["admin"],
                updated_by_user=users["admin"],
                owned_by_group=units[index % 2],  # the North team's, the South team's, in turn
            )
            # What the transitions would have recorded, had these jobs lived through them.
            if state in (LifeCycleState.IN_PROGRESS, LifeCycleState.COMPLETED):
                job.actual_start_date = created + timedelta(minutes=30)
            if state == LifeCycleState.COMPLETED:
                job.actual_completed_date = created + timedelta(minutes=90)
            if state == LifeCycleState.CANCELLED:
                job.cancellation_reason = reasons[index % len(reasons)]
            job.save()
            if index % 3 == 0:  # a third assigned, some to the other team: both see those
                Assignment.objects.create(
                    job=job,
                    user=users["dispatcher"] if index % 2 else None,
                    unit=rng.choice(units),
                )
            history.extend(self.history(job, statuses, users["dispatcher"]))
        JobTransitionLog.objects.bulk_create(history)
        return JOB_COUNT

    def history(self, job: Job, statuses: dict, by: Any) -> list[JobTransitionLog]:
        rows, state = [], LifeCycleState.DRAFT
        for name, minutes in PATHS[job.life_cycle_state]:
            target = TRANSITIONS[name].target
            rows.append(
                JobTransitionLog(
                    job=job,
                    transition=name,
                    from_state=state,
                    to_state=target,
                    from_status_id=statuses[(job.type_id, state)],
                    to_status_id=statuses[(job.type_id, target)],
                    user=by,
                    channel=Channel.ADMIN,
                    cancellation_reason=job.cancellation_reason if name == "cancel" else None,
                    created_at=job.created_date + timedelta(minutes=minutes),
                )
            )
            state = target
        return rows
