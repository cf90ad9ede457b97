"""Moving jobs through their life: the one place that does it, for the API, the admin and the
command, for every transition declared in `jobs.transitions`.

The transition itself (`Job.submit`, `Job.start_progress`, …) is pure and lives on the model. The
service owns what the model cannot, each concern in its own module:

- `permissions`: who may run a transition (django-fsm does not check `permission=` on a call)
  or view jobs, checked once per request;
- `resolution`: the order (`TransitionOrder`): every refusal rule stated once (for one job in
  memory and for any selection in SQL), the status and extra parameters each job enters, and the
  move in memory;
- `moves`: a job moved in memory, with what it was read as;
- `writes`: the compare-and-set UPDATE and the INSERTs, in the caller's transaction;
- `records`: the transition log rows and the events the writes insert;
- `one`: a single job, locked with everything it and its answer need (`jobs.sql.lock`);
- `bulk`: many jobs, batch by batch;
- `forecast`: what a bulk run would do to a selection of any size, counted in SQL;
- `selection` and `runs`: bulk runs in the background, carried out by workers;
- `intake`: a new job from outside, with its assignment and its event;
- `updates`: a job's fields changed (never its state), with the update's record and its event;
- `engine`: the one seam to the task engine (what must happen after commit).

Refusals are raised as codes with data (jobs.exceptions); the doors word them.
"""

from jobs.services.bulk import BulkSummary, Outcome, job_bulk_transition
from jobs.services.forecast import Forecast, forecast
from jobs.services.intake import NewJob, create_job
from jobs.services.one import job_transition
from jobs.services.permissions import ensure_may_view, ensure_permitted
from jobs.services.runs import get_run, queue_run, stop_run
from jobs.services.selection import Selection, eligible_jobs
from jobs.services.updates import JobChanges, update_job

__all__ = [
    "BulkSummary",
    "Forecast",
    "JobChanges",
    "NewJob",
    "Outcome",
    "Selection",
    "create_job",
    "eligible_jobs",
    "ensure_may_view",
    "ensure_permitted",
    "forecast",
    "get_run",
    "job_bulk_transition",
    "job_transition",
    "queue_run",
    "stop_run",
    "update_job",
]
