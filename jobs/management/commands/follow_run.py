"""Follow a background transition run until it ends: its progress bar at a terminal, then its
counts. Exit codes as `transition_jobs`: 0 every job moved, 1 some were skipped or the run did
not finish (stopped, failed), 2 no such run."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.exceptions import TransitionRunNotFound
from jobs.management.exit_codes import BAD_ARGUMENTS
from jobs.management.progress import follow_run


class Command(BaseCommand):
    help = "Follow a background transition run until it ends (its id, from transition_jobs)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("run", type=int, metavar="RUN_ID")
        parser.add_argument("--format", choices=["text", "json"], default="text")
        parser.add_argument(
            "--interval", type=float, default=0.5, help="seconds between looks (default: 0.5)"
        )

    def execute(self, *args: Any, **options: Any) -> Any:
        # The progress bar draws on the stream itself (see transition_jobs).
        self.terminal = options.get("stdout") or sys.stdout
        return super().execute(*args, **options)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            code = follow_run(
                options["run"],
                stdout=self.stdout,
                terminal=self.terminal,
                fmt=options["format"],
                interval=options["interval"],
            )
        except TransitionRunNotFound:
            raise CommandError(
                f"no transition run has id {options['run']}", returncode=BAD_ARGUMENTS
            ) from None
        if code:
            sys.exit(code)
