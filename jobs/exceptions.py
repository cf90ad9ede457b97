"""The domain's few failures, each carrying its error code from the API contract (the README
lists every code).

Doors translate them: the API into the envelope, the admin into messages, the command into
lines and exit codes. Nothing here knows about HTTP.
"""


class JobsError(Exception):
    code = "INTERNAL_ERROR"

    def __init__(self, message: str, description: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.description = description


class PermissionDenied(JobsError):
    code = "PERMISSION_DENIED"


class MandatoryParameterMissing(JobsError):
    code = "MANDATORY_PARAMETER_MISSING"


class InvalidIdentifier(JobsError):
    code = "INVALID_IDENTIFIER"


class InvalidParameter(JobsError):
    code = "INVALID_PARAMETER"


class JobNotFound(JobsError):
    code = "JOB_NOT_FOUND"


class StatusNotFound(JobsError):
    code = "STATUS_NOT_FOUND"


class StatusNotAllowed(JobsError):
    code = "STATUS_NOT_ALLOWED"


class NoDefaultStatus(JobsError):
    code = "NO_DEFAULT_STATUS"


class JobStateConflict(JobsError):
    code = "JOB_STATE_CONFLICT"


class CancellationReasonNotFound(JobsError):
    code = "CANCELLATION_REASON_NOT_FOUND"


class JobTypeNotFound(JobsError):
    code = "JOB_TYPE_NOT_FOUND"


class EventNotFound(JobsError):
    code = "EVENT_NOT_FOUND"
