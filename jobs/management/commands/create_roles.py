"""Make the groups a deployment starts with (dispatchers, technicians, viewers), and give people
their roles: `create_roles --give alice=dispatcher`."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.management.exit_codes import BAD_ARGUMENTS
from jobs.roles import ROLES, create_roles


class Command(BaseCommand):
    help = (
        "Create the role groups (Dispatchers, Technicians, Viewers) with their permissions; safe "
        "to run again (nothing is taken away). --give USER=ROLE adds a user to a role's group "
        "and lets them into the admin."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--give",
            action="append",
            default=[],
            metavar="USER=ROLE",
            help=f"ROLE is one of {', '.join(ROLES)}; may be repeated",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        gifts = [self._parse(given) for given in options["give"]]
        groups = {}
        for created in create_roles():
            groups[created.role] = created.group
            role = ROLES[created.role]
            if created.new:
                state = "created"
            elif created.added:
                state = f"given {', '.join(created.added)}"
            else:
                state = "already complete"
            self.stdout.write(f"{role.group} ({role.summary}): {state}.")
        for user, role in gifts:
            user.groups.add(groups[role])
            if not user.is_staff:
                user.is_staff = (
                    True  # the admin lets in staff only; the group says what they may do
                )
                user.save(update_fields=["is_staff"])
            self.stdout.write(f"{user.get_username()} is now in {ROLES[role].group}.")

    def _parse(self, given: str) -> tuple[Any, str]:
        username, sep, role = given.partition("=")
        if not sep or role not in ROLES:
            raise CommandError(
                f"--give takes USER=ROLE, ROLE one of {', '.join(ROLES)}; not {given!r}.",
                returncode=BAD_ARGUMENTS,
            )
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(
                f"No user is called {username!r}: create it first (createsuperuser, or the "
                "admin's Users page).",
                returncode=BAD_ARGUMENTS,
            )
        return user, role
