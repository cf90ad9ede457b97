"""Start progress on pending jobs: `transition_jobs start_progress`, with `--pending` for
`--eligible`. Its options, output and exit codes are those it has always had."""

from jobs.management.commands.transition_jobs import Command as TransitionJobsCommand
from jobs.transitions import START_PROGRESS


class Command(TransitionJobsCommand):
    help = "Start progress on pending jobs, named by number or selected with --pending."
    transition = START_PROGRESS
    eligible_option = "--pending"
    eligible_help = "every pending job (narrow with the next two)"
