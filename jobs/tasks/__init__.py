"""Every Celery task of the project, found by Celery's autodiscovery (config.celery):

- `webhooks`: fan events out to the endpoints that want them, deliver, sweep, prune the outbox;
- `runs`: background transition runs (their own queue, `runs`): plan, work, sweep;
- `engine`: what the service asks of the task engine (jobs.services.engine), done with Celery.
"""

from jobs.tasks import runs
from jobs.tasks.webhooks import announce, deliver, fan_out, prune, sweep

__all__ = ["announce", "deliver", "fan_out", "prune", "runs", "sweep"]
