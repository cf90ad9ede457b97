"""Moving jobs through their life: the one place that does it, for the API, the admin and the
command, for every transition declared in `jobs.transitions`.

The transition itself (`Job.submit`, `Job.start_progress`, …) is pure and lives on the model. The
service owns what the model cannot, each concern in its own module:

- `resolution`: the permission check (django-fsm does not check `permission=` on a call) and the
  status and extra parameters each job enters;
- `records`: the transition log row and the event each move leaves;
- `writes`: the compare-and-set UPDATE and the INSERTs, in the caller's transaction;
- `one`: a single job, locked with everything it and its answer need (`jobs.sql`);
- `bulk`: many jobs, batch by batch.
"""

from jobs.services.bulk import BulkSummary, Outcome, job_bulk_transition
from jobs.services.one import job_transition
from jobs.services.resolution import ensure_permitted

__all__ = ["BulkSummary", "Outcome", "ensure_permitted", "job_bulk_transition", "job_transition"]
