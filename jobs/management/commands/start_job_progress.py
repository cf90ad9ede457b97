"""Start progress on jobs from the command line: the same service as the API and the admin.

Exit codes: 0 every named job started (or would start, with --dry-run); 1 some were skipped, or a
batch failed; 2 bad arguments, with nothing changed.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from django.db import DatabaseError, models
from django.db.models import Q

from jobs.exceptions import PermissionDenied
from jobs.models import Channel, Job, JobStatus, JobType, LifeCycleState
from jobs.services import Outcome, bulk_start_progress

BAD_ARGUMENTS = 2


class Progress:
    """A one-line progress bar, drawn only when the output is a terminal."""

    def __init__(self, out: OutputWrapper, total: int | None, enabled: bool) -> None:
        self.out, self.total, self.enabled, self.done = out, total or 0, enabled and bool(total), 0

    def advance(self, count: int) -> None:
        self.done += count
        if self.enabled:
            width = 30
            filled = width * min(self.done, self.total) // self.total
            bar = "#" * filled + "." * (width - filled)
            self.out.write(f"\r[{bar}] {self.done}/{self.total} jobs", ending="")
            self.out.flush()

    def clear(self) -> None:
        if self.enabled:
            self.out.write("\r\033[K", ending="")


class Command(BaseCommand):
    help = "Start progress on pending jobs, named by number or selected with --pending."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "numbers", nargs="*", metavar="NUMBER", help="job numbers, e.g. JB00019"
        )
        parser.add_argument(
            "--pending", action="store_true", help="every pending job (narrow with the next two)"
        )
        parser.add_argument("--type", help="with --pending: a job type's id, name or code")
        parser.add_argument(
            "--status-from", help="with --pending: only jobs now in this status (id, name or code)"
        )
        parser.add_argument(
            "--status", help="start in this status (id, name or code); default: the type's"
        )
        parser.add_argument(
            "--user",
            default=settings.JOBS_COMMAND_DEFAULT_USER or None,
            help="username recorded as the one who started the jobs"
            + (
                f" (default: {settings.JOBS_COMMAND_DEFAULT_USER})"
                if settings.JOBS_COMMAND_DEFAULT_USER
                else ""
            ),
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="report what would start; change nothing"
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=settings.JOBS_BULK_BATCH_SIZE,
            help="jobs locked and committed together (default: %(default)s)",
        )
        parser.add_argument("--format", choices=["text", "json"], default="text")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1", returncode=BAD_ARGUMENTS)
        jobs = self.select_jobs(options)
        user = self.find_user(options["user"])
        status = find_by_identifier(JobStatus, options["status"], "--status")
        interactive = self.stdout.isatty() and options["format"] == "text"
        total = (len(jobs) if isinstance(jobs, list) else jobs.count()) if interactive else None
        progress = Progress(self.stdout, total, enabled=interactive)

        report = Report(self, options["format"], options["dry_run"], progress)
        try:
            summary = bulk_start_progress(
                jobs=jobs,
                status=status,
                user=user,
                channel=Channel.COMMAND,
                batch_size=options["batch_size"],
                dry_run=options["dry_run"],
                on_batch=report.batch,
            )
        except PermissionDenied as refusal:
            raise CommandError(
                f"user {user.username!r} may not start jobs: {refusal.description}",
                returncode=BAD_ARGUMENTS,
            ) from None
        except DatabaseError as failure:
            report.failed(failure)
            sys.exit(1)
        report.finish()
        if summary.skipped:
            sys.exit(1)

    def select_jobs(self, options: dict[str, Any]) -> list[str] | models.QuerySet[Job]:
        numbers = options["numbers"]
        if numbers and options["pending"]:
            raise CommandError(
                "name job numbers or use --pending, not both", returncode=BAD_ARGUMENTS
            )
        if not numbers and not options["pending"]:
            raise CommandError(
                "no jobs named: give job numbers, or --pending", returncode=BAD_ARGUMENTS
            )
        if numbers:
            if options["type"] or options["status_from"]:
                raise CommandError(
                    "--type and --status-from only narrow --pending", returncode=BAD_ARGUMENTS
                )
            return numbers
        jobs = Job.objects.filter(life_cycle_state=LifeCycleState.PENDING)
        if options["type"]:
            jobs = jobs.filter(type=find_by_identifier(JobType, options["type"], "--type"))
        if options["status_from"]:
            jobs = jobs.filter(
                status=find_by_identifier(JobStatus, options["status_from"], "--status-from")
            )
        return jobs

    def find_user(self, username: str | None) -> Any:
        if not username:
            raise CommandError(
                "--user is required (or set JOBS_COMMAND_DEFAULT_USER)", returncode=BAD_ARGUMENTS
            )
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"unknown user {username!r}", returncode=BAD_ARGUMENTS)
        if not user.is_active:
            raise CommandError(f"user {username!r} is inactive", returncode=BAD_ARGUMENTS)
        return user


def find_by_identifier(
    model: type[JobStatus] | type[JobType], value: str | None, option: str
) -> Any:
    """The one row whose id, name or alternative code is `value` (None when no value)."""
    if value is None:
        return None
    matches = Q(name=value) | Q(alternative_code=value)
    if value.isdigit():
        matches |= Q(pk=int(value))
    found = list(model.objects.filter(matches)[:2])
    if not found:
        raise CommandError(
            f"{option}: no {model._meta.verbose_name} has the id, name or code {value!r}",
            returncode=BAD_ARGUMENTS,
        )
    if len(found) > 1:
        raise CommandError(
            f"{option}: {value!r} names more than one {model._meta.verbose_name}; use its id",
            returncode=BAD_ARGUMENTS,
        )
    return found[0]


class Report:
    """Renders outcomes as they are committed: lines of text, or one JSON document at the end."""

    def __init__(self, command: Command, fmt: str, dry_run: bool, progress: Progress) -> None:
        self.command, self.fmt, self.dry_run, self.progress = command, fmt, dry_run, progress
        self.started: list[str] = []
        self.skipped: list[Outcome] = []

    def batch(self, outcomes: list[Outcome]) -> None:
        self.started.extend(o.number for o in outcomes if o.started)
        self.skipped.extend(o for o in outcomes if not o.started)
        if self.fmt == "json":
            return
        self.progress.clear()
        verb = "would start" if self.dry_run else "started"
        for outcome in outcomes:
            if outcome.started:
                self.command.stdout.write(f"{verb}  {outcome.number}")
            else:
                self.command.stdout.write(
                    f"skipped  {outcome.number}  {outcome.code}  {outcome.reason}"
                )
        self.progress.advance(len(outcomes))

    def finish(self, error: str | None = None) -> None:
        if self.fmt == "json":
            document = {
                "dry_run": self.dry_run,
                "started": self.started,
                "skipped": [
                    {"number": o.number, "code": o.code, "reason": o.reason} for o in self.skipped
                ],
                "counts": {"started": len(self.started), "skipped": len(self.skipped)},
            }
            if error:
                document["error"] = error
            self.command.stdout.write(json.dumps(document, indent=2))
            return
        self.progress.clear()
        verb = "Would start" if self.dry_run else "Started"
        line = f"{verb} {len(self.started)}, skipped {len(self.skipped)}."
        style = self.command.style.WARNING if self.skipped else self.command.style.SUCCESS
        self.command.stdout.write(style(line))

    def failed(self, failure: DatabaseError) -> None:
        message = (
            f"a batch failed and was rolled back ({type(failure).__name__}: {failure}); "
            "the batches before it are committed. Run the same command again to finish the rest."
        )
        if self.fmt == "json":
            self.finish(error=message)
        else:
            self.progress.clear()
        self.command.stderr.write(f"error: {message}")
