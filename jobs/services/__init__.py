"""Moving jobs through their life: the one place that does it, for the API, the admin and the
command, for every transition declared in `jobs.transitions`.

The transition itself (`Job.submit`, `Job.start_progress`, …) is pure and lives on the model. The
service owns what the model cannot, each concern in its own module:

- `resolution`: the permission check (django-fsm does not check `permission=` on a call) and the
  status and extra parameters each job enters;
- `records`: the transition log row and the event each move leaves;
- `writes`: the compare-and-set UPDATE and the INSERTs, in the caller's transaction;
- `one`: a single job, locked with everything it and its answer need (`jobs.sql.lock`);
- `bulk`: many jobs, batch by batch;
- `forecast`: what a bulk run would do to a selection of any size, counted in SQL;
- `selection` and `runs`: bulk runs in the background, carried out by Celery workers.
"""

from jobs.services.bulk import BulkSummary, Outcome, job_bulk_transition
from jobs.services.forecast import Forecast, forecast
from jobs.services.one import job_transition
from jobs.services.resolution import ensure_may_view, ensure_permitted
from jobs.services.runs import get_run, queue_run, stop_run
from jobs.services.selection import Selection

__all__ = [
    "BulkSummary",
    "Forecast",
    "Outcome",
    "Selection",
    "ensure_may_view",
    "ensure_permitted",
    "forecast",
    "get_run",
    "job_bulk_transition",
    "job_transition",
    "queue_run",
    "stop_run",
]
