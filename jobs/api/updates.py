"""The update endpoints: CRM.COM's `POST jobs/generic_purpose/update` (the job named in the body)
and ours, `PATCH jobs/{id}`. Each reads its declared body (`jobs.api.inputs`), keeping apart a
field left out (unchanged) and one sent as null (cleared), calls
`jobs.services.update_job` with the request's `If-Match`, and renders the job."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from jobs.api.etags import IF_MATCH, job_response, precondition
from jobs.api.job_inputs import UpdateByIdentifierInput, UpdateInput
from jobs.api.schema import ID_IN_PATH, errors
from jobs.api.serializers import JOB_ENVELOPE, job_answer
from jobs.api.transitions import job_in_path, read
from jobs.models import Channel
from jobs.services import JobChanges, update_job

UPDATE_ERRORS = (
    "AUTHENTICATION_FAILED",
    "PERMISSION_DENIED",
    "INVALID_IDENTIFIER",
    "INVALID_PARAMETER",
    "JOB_NOT_FOUND",
    "STATUS_NOT_FOUND",
    "STATUS_NOT_ALLOWED",
    "USER_NOT_FOUND",
    "GROUP_NOT_FOUND",
    "JOB_STATE_CONFLICT",
    "DUPLICATE_EXTERNAL_REFERENCE",
    "PRECONDITION_FAILED",
)
# The body's names, as the service's fields (the rest are the same on both sides).
RENAMED = {"owned_by_group_identifier": "owned_by_group", "status_identifier": "status"}
CHANGES = {
    "notes": "Customer asks for a call before the visit",
    "owned_by_group_identifier": {"name": "South field team"},
    "scheduled_date": None,
    "fields_set": "number,notes,owned_by_group.name,scheduled_date",
}
EXAMPLE = OpenApiExample(
    "Hand the job to the South team, with a note; clear its scheduled date",
    value=CHANGES,
    request_only=True,
)
CRM_EXAMPLE = OpenApiExample(
    "Hand JB00002 to the South team, with a note; clear its scheduled date",
    value={"job_identifier": {"number": "JB00002"}, **CHANGES},
    request_only=True,
)


def job_changes(body: dict[str, Any]) -> JobChanges:
    """The update's body as the service takes it: only the fields sent."""
    sent = {RENAMED.get(name, name): value for name, value in body.items()}
    sent = {name: value for name, value in sent.items() if name in JobChanges.__dataclass_fields__}
    if sent.get("assigned_to") is not None:
        assigned = sent["assigned_to"]
        sent["assigned_to"] = (assigned.get("user_identifier"), assigned.get("unit_identifier"))
    return JobChanges(**sent)


class UpdateEndpoints:
    """The JobViewSet's update endpoints."""

    @extend_schema(
        summary="Update a job's fields, never its state (ours)",
        parameters=[ID_IN_PATH, IF_MATCH],
        request=UpdateInput,
        examples=[EXAMPLE],
        responses={200: JOB_ENVELOPE, **errors(*UPDATE_ERRORS)},
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        body = read(UpdateInput, request)
        return self._update(job_in_path(request, pk), body, request)

    @extend_schema(
        summary="Update a job named in the body (CRM.COM's method)",
        parameters=[IF_MATCH],
        request=UpdateByIdentifierInput,
        examples=[CRM_EXAMPLE],
        responses={200: JOB_ENVELOPE, **errors("MANDATORY_PARAMETER_MISSING", *UPDATE_ERRORS)},
    )
    @action(detail=False, methods=["post"], url_path="generic_purpose/update")
    def update_generic_purpose(self, request: Request) -> Response:
        body = read(UpdateByIdentifierInput, request)
        return self._update(body["job_identifier"], body, request)

    def _update(self, job: dict[str, Any], body: dict[str, Any], request: Request) -> Response:
        answer = job_answer(body.get("fields_set"))
        updated = update_job(
            job,
            job_changes(body),
            user=request.user,
            channel=Channel.API,
            precondition=precondition(request),
            load=answer.columns,
        )
        return job_response(answer, updated)
