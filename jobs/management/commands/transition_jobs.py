"""Run a transition on jobs from the command line: the same service as the API and the admin.

`transition_jobs TRANSITION …` serves every transition declared in `jobs.transitions`;
`start_job_progress` is this command with the transition fixed.

Exit codes: 0 every named job moved (or would, with --dry-run); 1 some were skipped, or a batch
failed; 2 bad arguments, with nothing changed.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, models
from django.urls import reverse

from jobs.exceptions import (
    JobNotFound,
    JobsError,
    JobTypeNotFound,
    PermissionDenied,
    StatusNotFound,
)
from jobs.management.exit_codes import BAD_ARGUMENTS, SOME_NOT_MOVED
from jobs.management.progress import Progress, follow_run
from jobs.management.words import command_words, reason
from jobs.metrics import access_refused
from jobs.models import Channel, Job, JobStatus, JobType
from jobs.selectors import catalog_entry_named
from jobs.services import Outcome, Selection, eligible_jobs, job_bulk_transition, queue_run
from jobs.transitions import TRANSITIONS, Choice, JobTransition
from jobs.visibility import Sight, sight_of

# The service's JSON log lines (each batch, a queued run) are for operators' logs; at a terminal,
# the command's own sentences alone, unless -v 2 asks for both.
service_log = logging.getLogger("jobs.services")


class Command(BaseCommand):
    help = (
        f"Run a transition ({', '.join(TRANSITIONS)}) on jobs named by number, or on every job "
        "whose state allows it (--eligible)."
    )
    # Set by a command that serves one transition (start_job_progress); else an argument.
    transition: JobTransition | None = None
    eligible_option = "--eligible"
    eligible_help = "every job whose state allows the transition (narrow with the next two)"

    def add_arguments(self, parser: CommandParser) -> None:
        if self.transition is None:
            parser.add_argument("transition", choices=list(TRANSITIONS), metavar="TRANSITION")
        parser.add_argument(
            "numbers", nargs="*", metavar="NUMBER", help="job numbers, e.g. JB00019"
        )
        parser.add_argument(
            self.eligible_option, dest="eligible", action="store_true", help=self.eligible_help
        )
        narrows = f"with {self.eligible_option}"
        parser.add_argument("--type", help=f"{narrows}: a job type's id, name or code")
        parser.add_argument(
            "--status-from", help=f"{narrows}: only jobs now in this status (id, name or code)"
        )
        parser.add_argument(
            "--status", help="the status to enter (id, name or code); default: the type's"
        )
        for parameter in self.parameters():
            parser.add_argument(
                parameter.option,
                dest=parameter.name,
                help=f"{parameter.label.lower()} (id, name or code); default: the type's",
            )
        parser.add_argument(
            "--user",
            default=settings.JOBS_COMMAND_DEFAULT_USER or None,
            help="username recorded as the one who ran the transition"
            + (
                f" (default: {settings.JOBS_COMMAND_DEFAULT_USER})"
                if settings.JOBS_COMMAND_DEFAULT_USER
                else ""
            ),
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="report what would happen; change nothing"
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=settings.JOBS_BULK_BATCH_SIZE,
            help="jobs locked and committed together (default: %(default)s)",
        )
        parser.add_argument("--format", choices=["text", "json"], default="text")
        parser.add_argument(
            "--background",
            action="store_true",
            help="queue a run for the workers and print its id and page at once",
        )
        parser.add_argument(
            "--follow",
            action="store_true",
            help="with --background: draw the run's progress until it ends (as follow_run)",
        )

    def parameters(self) -> list[Choice]:
        """The extra parameters this command's transitions take, each once."""
        transitions = [self.transition] if self.transition else TRANSITIONS.values()
        found = {p.name: p for t in transitions for p in t.parameters}
        return list(found.values())

    def execute(self, *args: Any, **options: Any) -> Any:
        # The progress bar draws on the stream itself: the command's own wrapper ends every write
        # with a new line.
        self.terminal = options.get("stdout") or sys.stdout
        return super().execute(*args, **options)

    def handle(self, *args: Any, **options: Any) -> None:
        declared = self.transition or TRANSITIONS[options["transition"]]
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1", returncode=BAD_ARGUMENTS)
        if options["background"] and options["dry_run"]:
            raise CommandError(
                "--dry-run runs in the command, not --background", returncode=BAD_ARGUMENTS
            )
        if options["follow"] and not options["background"]:
            raise CommandError("--follow goes with --background", returncode=BAD_ARGUMENTS)
        service_log.setLevel(logging.INFO if options["verbosity"] >= 2 else logging.WARNING)
        try:
            self.carry_out(declared, options)
        finally:
            service_log.setLevel(logging.NOTSET)

    def carry_out(self, declared: JobTransition, options: dict[str, Any]) -> None:
        user = self.find_user(options["user"])
        self.sight = sight_of(user)  # the command moves only what --user sees
        jobs = self.select_jobs(declared, options)
        status = find_by_identifier(JobStatus, options["status"], "--status", StatusNotFound)
        parameters = self.parameter_values(declared, options)
        if options["background"]:
            self.queue(declared, jobs, status, user, parameters, options)
            return
        interactive = self.stdout.isatty() and options["format"] == "text"
        total = (len(jobs) if isinstance(jobs, list) else jobs.count()) if interactive else None
        progress = Progress(self.terminal, total, enabled=interactive)

        report = Report(self, declared, options["format"], options["dry_run"], progress, user)
        try:
            summary = job_bulk_transition(
                transition=declared,
                jobs=jobs,
                status=status,
                user=user,
                channel=Channel.COMMAND,
                batch_size=options["batch_size"],
                dry_run=options["dry_run"],
                on_batch=report.batch,
                **parameters,
            )
        except PermissionDenied as refusal:
            raise not_permitted(user, declared, refusal) from None
        except DatabaseError as failure:
            report.failed(failure)
            sys.exit(SOME_NOT_MOVED)
        report.finish()
        if summary.skipped:
            sys.exit(SOME_NOT_MOVED)

    def queue(
        self,
        declared: JobTransition,
        jobs: list[str] | models.QuerySet[Job],
        status: Any,
        user: Any,
        parameters: dict[str, Any],
        options: dict[str, Any],
    ) -> None:
        """Hand the jobs to the workers: a run, written now and carried out in the background."""
        try:
            run = queue_run(
                transition=declared,
                selection=background_selection(declared, jobs, self.narrowing, self.sight),
                status=status,
                user=user,
                channel=Channel.COMMAND,
                **parameters,
            )
        except PermissionDenied as refusal:
            raise not_permitted(user, declared, refusal) from None
        page = settings.JOBS_SITE_URL.rstrip("/") + reverse(
            "admin:jobs_transitionrun_change", args=[run.pk]
        )
        if options["format"] == "json" and not options["follow"]:
            self.stdout.write(json.dumps({"run": run.pk, "page": page}))
        elif options["format"] == "text":
            self.stdout.write(f"Queued run {run.pk}: {page}")
            if not options["follow"]:
                self.stdout.write(f"Follow it with: manage.py follow_run {run.pk}")
        if options["follow"]:
            code = follow_run(
                run.pk, stdout=self.stdout, terminal=self.terminal, fmt=options["format"]
            )
            if code:
                sys.exit(code)

    def parameter_values(self, declared: JobTransition, options: dict[str, Any]) -> dict:
        taken = {p.name for p in declared.parameters}
        values = {}
        for parameter in self.parameters():
            value = options.get(parameter.name)
            if value is None:
                continue
            if parameter.name not in taken:
                raise CommandError(
                    f"{parameter.option} does not go with {declared.name}",
                    returncode=BAD_ARGUMENTS,
                )
            values[parameter.name] = find_by_identifier(
                parameter.model, value, parameter.option, parameter.not_found
            )
        return values

    def select_jobs(
        self, declared: JobTransition, options: dict[str, Any]
    ) -> list[str] | models.QuerySet[Job]:
        numbers, eligible = options["numbers"], self.eligible_option
        if numbers and options["eligible"]:
            raise CommandError(
                f"name job numbers or use {eligible}, not both", returncode=BAD_ARGUMENTS
            )
        if not numbers and not options["eligible"]:
            raise CommandError(
                f"no jobs named: give job numbers, or {eligible}", returncode=BAD_ARGUMENTS
            )
        self.narrowing = {}
        if numbers:
            if options["type"] or options["status_from"]:
                raise CommandError(
                    f"--type and --status-from only narrow {eligible}", returncode=BAD_ARGUMENTS
                )
            return numbers
        # As GET jobs names them, for a background run to re-read.
        self.narrowing: dict[str, int] = {}
        if options["type"]:
            job_type = find_by_identifier(JobType, options["type"], "--type", JobTypeNotFound)
            self.narrowing["type"] = job_type.pk
        if options["status_from"]:
            status = find_by_identifier(
                JobStatus, options["status_from"], "--status-from", StatusNotFound
            )
            self.narrowing["status"] = status.pk
        return eligible_jobs(declared, self.sight, **self.narrowing)

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


def not_permitted(user: Any, declared: JobTransition, refusal: PermissionDenied) -> CommandError:
    access_refused("command", refusal.code, user, f"{declared.name} jobs")
    return CommandError(
        f"user {user.username!r} may not {declared.verb} jobs: {command_words(refusal)[1]}",
        returncode=BAD_ARGUMENTS,
    )


def background_selection(
    declared: JobTransition,
    jobs: list[str] | models.QuerySet[Job],
    narrowing: dict[str, int],
    sight: Sight,
) -> Selection:
    """What a background run works on: the jobs named, every one of them known (to the user);
    or the eligible ones, narrowed as --type and --status-from say."""
    if not isinstance(jobs, list):
        return Selection.eligible(declared, sight, **narrowing)
    selection, unknown = Selection.of_numbers(jobs, sight)
    if unknown:
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise CommandError(
            f"no job has number {', '.join(unknown[:5])}{more}; nothing queued",
            returncode=BAD_ARGUMENTS,
        )
    return selection


def find_by_identifier(
    model: type[models.Model], value: str | None, option: str, not_found: type[JobsError]
) -> Any:
    """The one row whose id, name or alternative code is `value` (None when no value)."""
    if value is None:
        return None
    try:
        return catalog_entry_named(model, value, not_found=not_found)
    except JobsError as refusal:
        raise CommandError(f"{option}: {refusal.message}", returncode=BAD_ARGUMENTS) from None


class Report:
    """Renders outcomes as they are committed: lines of text, or one JSON document at the end."""

    def __init__(
        self,
        command: Command,
        declared: JobTransition,
        fmt: str,
        dry_run: bool,
        progress: Progress,
        user: Any,
    ) -> None:
        self.command, self.declared, self.fmt = command, declared, fmt
        self.dry_run, self.progress, self.user = dry_run, progress, user
        self.done: list[str] = []
        self.skipped: list[Outcome] = []

    def batch(self, outcomes: list[Outcome]) -> None:
        self.done.extend(o.number for o in outcomes if o.done)
        self.skipped.extend(o for o in outcomes if not o.done)
        unseen = [o.number for o in outcomes if o.code == JobNotFound.code]
        if unseen:  # none such, or not one --user sees: the same either way
            target = f"jobs {', '.join(n or '?' for n in unseen[:20])}"
            access_refused("command", JobNotFound.code, self.user, target, len(unseen))
        if self.fmt == "json":
            return
        self.progress.clear()
        verb = f"would {self.declared.verb}" if self.dry_run else self.declared.past
        for outcome in outcomes:
            if outcome.done:
                self.command.stdout.write(f"{verb}  {outcome.number}")
            else:
                number = outcome.number or "(one no longer seen)"
                self.command.stdout.write(
                    f"skipped  {number}  {outcome.code}  {reason(outcome.refusal)}"
                )
        self.progress.advance(len(outcomes))

    def finish(self, error: str | None = None) -> None:
        if self.fmt == "json":
            past = self.declared.past
            document = {
                "dry_run": self.dry_run,
                past: self.done,
                "skipped": [
                    {"number": o.number, "code": o.code, "reason": reason(o.refusal)}
                    for o in self.skipped
                ],
                "counts": {past: len(self.done), "skipped": len(self.skipped)},
            }
            if error:
                document["error"] = error
            self.command.stdout.write(json.dumps(document, indent=2))
            return
        self.progress.close()
        verb = f"Would {self.declared.verb}" if self.dry_run else self.declared.past.capitalize()
        line = f"{verb} {len(self.done)}, skipped {len(self.skipped)}."
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
            self.progress.close()
        self.command.stderr.write(f"error: {message}")
