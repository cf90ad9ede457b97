"""What the commands draw while jobs move: a progress bar at a terminal, and following a
background run until it ends (`follow_run`, `transition_jobs --background --follow`)."""

from __future__ import annotations

import json
import time
from typing import TextIO

from django.core.management.base import OutputWrapper
from tqdm import tqdm

from jobs.management.exit_codes import ALL_MOVED, SOME_NOT_MOVED
from jobs.models import RunState, TransitionRun
from jobs.services import get_run, runs
from jobs.transitions import TRANSITIONS

# Exit codes, as for a run in the command itself: 0 all moved, 1 some skipped (or the run did
# not finish), 2 bad arguments.


class Progress:
    """A progress bar (tqdm), drawn only when the output is a terminal; lines of text are written
    above it."""

    def __init__(self, terminal: TextIO, total: int | None, enabled: bool) -> None:
        self.bar = tqdm(
            total=total,
            file=terminal,
            disable=not (enabled and total),
            unit="job",
            dynamic_ncols=True,
            leave=False,
            mininterval=0,  # one update per committed batch: draw each
            miniters=1,
        )

    def advance(self, count: int) -> None:
        self.bar.update(count)

    def advance_to(self, done: int) -> None:
        self.bar.update(done - self.bar.n)

    def clear(self) -> None:
        self.bar.clear()

    def close(self) -> None:
        self.bar.close()


def follow_run(
    run_id: int,
    *,
    stdout: OutputWrapper,
    terminal: TextIO,
    fmt: str = "text",
    interval: float = 0.5,
) -> int:
    """Draw the run's progress until it ends; print its counts; return the exit code."""
    run = get_run(run_id)
    interactive = stdout.isatty() and fmt == "text"
    progress: Progress | None = None
    while not run.ended:
        if run.selected is not None and progress is None:
            progress = Progress(terminal, run.selected, enabled=interactive)
        if progress is not None:
            progress.advance_to(run.moved + run.skipped_count)
        time.sleep(interval)
        run = get_run(run_id)
    if progress is not None:
        progress.close()
    report_run(run, stdout, fmt)
    return ALL_MOVED if run.state == RunState.FINISHED and not run.skipped else SOME_NOT_MOVED


def report_run(run: TransitionRun, stdout: OutputWrapper, fmt: str) -> None:
    if fmt == "json":
        stdout.write(json.dumps(runs.summary(run), indent=2))
        return
    declared = TRANSITIONS.get(run.transition)
    past = declared.past if declared else "moved"
    line = (
        f"Run {run.pk} {run.get_state_display().lower()}: {past.capitalize()} {run.moved}, "
        f"skipped {run.skipped_count}."
    )
    stdout.write(line)
    for code, group in run.skipped.items():
        more = " …" if group["count"] > len(group["numbers"]) else ""
        stdout.write(f"skipped  {code}  {group['count']}: {', '.join(group['numbers'])}{more}")
    if run.error:
        stdout.write(f"error: {run.error}")
