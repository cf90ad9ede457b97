"""Delete what the outbox no longer needs (see jobs.retention); beat runs the same every day."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.management.exit_codes import BAD_ARGUMENTS
from jobs.retention import prune_outbox


class Command(BaseCommand):
    help = (
        "Delete fanned-out events and finished webhook deliveries older than the retention "
        "(JOBS_OUTBOX_RETENTION_DAYS), and idempotency keys older than 24 hours, in small "
        "batches. The transition log is kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            default=settings.JOBS_OUTBOX_RETENTION_DAYS,
            help="keep what is younger than this (default: %(default)s)",
        )
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        for option in ("days", "batch_size"):
            minimum = 0 if option == "days" else 1
            if options[option] < minimum:
                name = "--" + option.replace("_", "-")
                raise CommandError(f"{name} must be {minimum} or more.", returncode=BAD_ARGUMENTS)
        pruned = prune_outbox(
            older_than=timedelta(days=options["days"]),
            batch_size=options["batch_size"],
            dry_run=options["dry_run"],
        )
        verb = "Would delete" if options["dry_run"] else "Deleted"
        self.stdout.write(
            f"{verb} {pruned.events} events and {pruned.deliveries} webhook deliveries "
            f"older than {options['days']} days, and {pruned.idempotency_keys} idempotency keys "
            "older than 24 hours."
        )
