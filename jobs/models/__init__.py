"""The jobs domain of CRM.COM: statuses, types, jobs and the record of everything done to them.

A job's life cycle is a django-fsm state machine on `Job.life_cycle_state`. Transitions change the
job in memory only; `jobs.services` owns locking, saving and the transition log. Each module holds
one part; everything is imported from here (`from jobs.models import Job`).
"""

from jobs.models.catalog import (
    CREATE_STATES,
    AllowedStatus,
    CatalogEntry,
    JobCancellationReason,
    JobStatus,
    JobType,
    default_status_fields,
)
from jobs.models.choices import (
    CANCEL_PERMISSION,
    COMPLETE_PERMISSION,
    START_PROGRESS_PERMISSION,
    SUBMIT_PERMISSION,
    VIEW_ALL_PERMISSION,
    Channel,
    ExpirationSetting,
    FulfillmentScope,
    LifeCycleState,
    RatingState,
)
from jobs.models.job import Assignment, Job, format_job_number
from jobs.models.records import Event, IdempotencyKey, JobTransitionLog, JobUpdate, new_event_id
from jobs.models.runs import RUN_ENDED, RunState, TransitionRun, TransitionRunChunk
from jobs.models.webhooks import (
    DeliveryState,
    WebhookDelivery,
    WebhookEndpoint,
    new_webhook_secret,
)

__all__ = [
    "CANCEL_PERMISSION",
    "COMPLETE_PERMISSION",
    "CREATE_STATES",
    "RUN_ENDED",
    "START_PROGRESS_PERMISSION",
    "SUBMIT_PERMISSION",
    "VIEW_ALL_PERMISSION",
    "AllowedStatus",
    "Assignment",
    "CatalogEntry",
    "Channel",
    "DeliveryState",
    "Event",
    "ExpirationSetting",
    "FulfillmentScope",
    "IdempotencyKey",
    "Job",
    "JobCancellationReason",
    "JobStatus",
    "JobTransitionLog",
    "JobType",
    "JobUpdate",
    "LifeCycleState",
    "RatingState",
    "RunState",
    "TransitionRun",
    "TransitionRunChunk",
    "WebhookDelivery",
    "WebhookEndpoint",
    "default_status_fields",
    "format_job_number",
    "new_event_id",
    "new_webhook_secret",
]
