"""The domain's few failures, each carrying its error code from the API contract (the README
lists every code).

The service raises a refusal as its code with data (`JobStateConflict(job="JB00019",
state="COMPLETED", transition="start_progress")`); each door puts it in its own words: the API in
the envelope (jobs.api.words), the admin in its messages (jobs.admin.words), the command in its
lines (jobs.management.words). A door's own refusals (a malformed parameter) carry their words
from the start: `InvalidParameter("…", "…")`. `http_status` is the contract's table of codes,
which the API's envelope reads; nothing else here knows about HTTP.
"""

from typing import Any


class JobsError(Exception):
    code = "INTERNAL_ERROR"
    http_status = 500

    def __init__(self, message: str = "", description: str = "", **data: Any) -> None:
        # A refusal with data reads, in a log or a traceback, as its code and data.
        facts = ", ".join(f"{name}={value}" for name, value in data.items())
        super().__init__(message or f"{self.code}: {facts}")
        self.message = message
        self.description = description
        self.data = data


class PermissionDenied(JobsError):
    code = "PERMISSION_DENIED"
    http_status = 403


class MandatoryParameterMissing(JobsError):
    code = "MANDATORY_PARAMETER_MISSING"
    http_status = 400


class InvalidIdentifier(JobsError):
    code = "INVALID_IDENTIFIER"
    http_status = 400


class InvalidParameter(JobsError):
    code = "INVALID_PARAMETER"
    http_status = 400


class JobNotFound(JobsError):
    code = "JOB_NOT_FOUND"
    http_status = 404


class StatusNotFound(JobsError):
    code = "STATUS_NOT_FOUND"
    http_status = 400


class StatusNotAllowed(JobsError):
    code = "STATUS_NOT_ALLOWED"
    http_status = 400


class NoDefaultStatus(JobsError):
    code = "NO_DEFAULT_STATUS"
    http_status = 409


class JobStateConflict(JobsError):
    code = "JOB_STATE_CONFLICT"
    http_status = 409


class CancellationReasonNotFound(JobsError):
    code = "CANCELLATION_REASON_NOT_FOUND"
    http_status = 400


class JobTypeNotFound(JobsError):
    code = "JOB_TYPE_NOT_FOUND"
    http_status = 400


class EventNotFound(JobsError):
    code = "EVENT_NOT_FOUND"
    http_status = 400


class TransitionRunNotFound(JobsError):
    code = "TRANSITION_RUN_NOT_FOUND"
    http_status = 404


class UserNotFound(JobsError):
    code = "USER_NOT_FOUND"
    http_status = 400


class GroupNotFound(JobsError):
    code = "GROUP_NOT_FOUND"
    http_status = 400


class DuplicateExternalReference(JobsError):
    code = "DUPLICATE_EXTERNAL_REFERENCE"
    http_status = 409


class PreconditionFailed(JobsError):
    """The job changed since the version the caller named (the API's If-Match)."""

    code = "PRECONDITION_FAILED"
    http_status = 412


class IdempotencyKeyReused(JobsError):
    code = "IDEMPOTENCY_KEY_REUSED"
    http_status = 409


class IdempotencyKeyInUse(JobsError):
    code = "IDEMPOTENCY_KEY_IN_USE"
    http_status = 409


def every_error() -> list[type[JobsError]]:
    """Every domain error, each with its own code."""
    found, pending = [], [JobsError]
    while pending:
        error = pending.pop(0)
        found.append(error)
        pending.extend(error.__subclasses__())
    return found
