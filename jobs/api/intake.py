"""The create endpoints: CRM.COM's `POST jobs/generic_purpose/create` (GENERIC_PURPOSE types,
200) and ours, `POST jobs` (any type, 201). Each reads its declared body (`jobs.api.inputs`),
takes an `Idempotency-Key` (`jobs.api.idempotency`), calls `jobs.services.intake.create_job` and
renders the job it made."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from jobs.api.etags import job_response
from jobs.api.idempotency import HEADER, idempotent
from jobs.api.job_inputs import CreateInput
from jobs.api.schema import errors
from jobs.api.serializers import JOB_ENVELOPE, job_answer
from jobs.api.transitions import read
from jobs.models import Channel, FulfillmentScope
from jobs.services.intake import ABSENT, NewJob, create_job

CREATE_ERRORS = (
    "AUTHENTICATION_FAILED",
    "PERMISSION_DENIED",
    "MANDATORY_PARAMETER_MISSING",
    "INVALID_IDENTIFIER",
    "INVALID_PARAMETER",
    "JOB_TYPE_NOT_FOUND",
    "STATUS_NOT_FOUND",
    "STATUS_NOT_ALLOWED",
    "NO_DEFAULT_STATUS",
    "USER_NOT_FOUND",
    "GROUP_NOT_FOUND",
    "DUPLICATE_EXTERNAL_REFERENCE",
    "IDEMPOTENCY_KEY_REUSED",
    "IDEMPOTENCY_KEY_IN_USE",
)
IDEMPOTENCY_KEY = OpenApiParameter(
    HEADER,
    {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"},
    OpenApiParameter.HEADER,
    description="(ours) a unique id for this create: sent again with the same body within 24 "
    "hours, it answers the first answer again and creates nothing",
)
EXAMPLE = OpenApiExample(
    "A repair for the North team",
    value={
        "type_identifier": {"alternative_code": "REPAIR"},
        "description": "Replace the router at 12 Harbour Rd",
        "owned_by_group_identifier": {"name": "North field team"},
        "external_reference": "SHOP-1042",
        "fields_set": "number,life_cycle_state,status.name",
    },
    request_only=True,
)
# CRM.COM's method takes GENERIC_PURPOSE types only: the demo's site survey, which has no default
# status on create.
CRM_EXAMPLE = OpenApiExample(
    "A site survey for the North team",
    value={
        "type_identifier": {"alternative_code": "SURVEY"},
        "status_identifier": {"alternative_code": "SURVEY-DRAFT"},
        "description": "Survey the roof for a dish",
        "owned_by_group_identifier": {"name": "North field team"},
        "fields_set": "number,life_cycle_state,status.name",
    },
    request_only=True,
)


def new_job(body: dict[str, Any]) -> NewJob:
    """The create's body as the service takes it."""
    assigned = body.get("assigned_to") or {}
    return NewJob(
        job_type=body["type_identifier"],
        status=body.get("status_identifier"),
        description=body.get("description", ""),
        notes=body.get("notes", ""),
        scheduled_date=body.get("scheduled_date"),
        assigned_user=assigned.get("user_identifier"),
        assigned_unit=assigned.get("unit_identifier"),
        owned_by_group=body.get("owned_by_group_identifier", ABSENT),
        external_reference=body.get("external_reference"),
    )


class IntakeEndpoints:
    """The JobViewSet's create endpoints."""

    @extend_schema(
        summary="Create a job of any type (ours)",
        parameters=[IDEMPOTENCY_KEY],
        request=CreateInput,
        examples=[EXAMPLE],
        responses={201: JOB_ENVELOPE, **errors(*CREATE_ERRORS)},
    )
    def create(self, request: Request) -> Response:
        body = read(CreateInput, request)
        return idempotent(request, lambda: self._create(body, status.HTTP_201_CREATED, None))

    @extend_schema(
        summary="Create a generic purpose job (CRM.COM's method)",
        parameters=[IDEMPOTENCY_KEY],
        request=CreateInput,
        examples=[CRM_EXAMPLE],
        responses={200: JOB_ENVELOPE, **errors(*CREATE_ERRORS)},
    )
    @action(detail=False, methods=["post"], url_path="generic_purpose/create")
    def create_generic_purpose(self, request: Request) -> Response:
        body = read(CreateInput, request)
        scope = FulfillmentScope.GENERIC_PURPOSE
        return idempotent(request, lambda: self._create(body, status.HTTP_200_OK, scope))

    def _create(self, body: dict[str, Any], answer_status: int, scope: str | None) -> Response:
        answer = job_answer(body.get("fields_set"))
        user = self.request.user
        job = create_job(new_job(body), user=user, channel=Channel.API, scope=scope)
        return job_response(answer, job, answer_status)
