"""CRM.COM's read methods, forms of `GET jobs` and `GET jobs/{id}` with its query forms:
`GET jobs/all_scopes/list`, `…/get_draft`, `…/get_overdue` and `GET jobs/generic_purpose/show`.
Each holds only the jobs the caller sees, newest created first, paged and shaped by `fields_set`
as `GET jobs`."""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from jobs.api.envelope import envelope
from jobs.api.inputs import FIELDS_SET, FIELDS_SET_QUERY, PAGING, only_query, query_identifier
from jobs.api.schema import enveloped, errors
from jobs.api.serializers import JOB_ENVELOPE, JobSerializer, TypeStatusSerializer, job_answer
from jobs.exceptions import JobNotFound, MandatoryParameterMissing
from jobs.filters import overdue
from jobs.identifiers import CATALOG_IDENTIFIER_FIELDS, JOB_IDENTIFIER_FIELDS
from jobs.models import LifeCycleState
from jobs.selectors import job_type_by_identifier, next_statuses

# What a method naming one job in its query may answer besides the job.
ONE_JOB_ERRORS = errors(
    "AUTHENTICATION_FAILED",
    "PERMISSION_DENIED",
    "MANDATORY_PARAMETER_MISSING",
    "INVALID_IDENTIFIER",
    "INVALID_PARAMETER",
    "JOB_NOT_FOUND",
)
LIST_ERRORS = errors(
    "AUTHENTICATION_FAILED",
    "PERMISSION_DENIED",
    "INVALID_IDENTIFIER",
    "INVALID_PARAMETER",
    "JOB_TYPE_NOT_FOUND",
)


def _identifier_query(name: str, fields: tuple[str, ...], example: str, **kwargs: Any):
    # An id of at most 18 digits: every such number fits the id column.
    texts = "|".join(field for field in fields if field != "id")
    return OpenApiParameter(
        name,
        {"type": "string", "pattern": f"^(id=[1-9][0-9]{{0,17}}|({texts})=[^\\u0000]+)$"},
        description=f"CRM.COM's form: {example}",
        **kwargs,
    )


TYPE_QUERY = _identifier_query(
    "type_identifier", CATALOG_IDENTIFIER_FIELDS, "type_identifier=alternative_code=REPAIR"
)
JOB_QUERY = _identifier_query(
    "job_identifier", JOB_IDENTIFIER_FIELDS, "job_identifier=number=JB00019", required=True
)


def listing(summary: str):
    return extend_schema(
        summary=summary,
        parameters=[TYPE_QUERY, *FIELDS_SET_QUERY],
        responses={200: JobSerializer(many=True), **LIST_ERRORS},
    )


class ReadEndpoints:
    """The JobViewSet's CRM.COM read methods."""

    @listing("Jobs, newest created first (CRM.COM's method)")
    @action(detail=False, methods=["get"], url_path="all_scopes/list", filter_backends=[])
    def all_scopes_list(self, request: Request) -> Response:
        return self._crm_page(request, Q())

    @listing("Draft jobs, newest created first (CRM.COM's method)")
    @action(detail=False, methods=["get"], url_path="all_scopes/get_draft", filter_backends=[])
    def get_draft(self, request: Request) -> Response:
        return self._crm_page(request, Q(life_cycle_state=LifeCycleState.DRAFT))

    @listing("Overdue jobs: still open, past their expiration date (CRM.COM's method)")
    @action(detail=False, methods=["get"], url_path="all_scopes/get_overdue", filter_backends=[])
    def get_overdue(self, request: Request) -> Response:
        return self._crm_page(request, overdue())

    @extend_schema(
        summary="One job, named in the query (CRM.COM's method)",
        parameters=[JOB_QUERY, *FIELDS_SET_QUERY],
        responses={
            200: JOB_ENVELOPE,
            **ONE_JOB_ERRORS,
        },
    )
    @action(detail=False, methods=["get"], url_path="generic_purpose/show", filter_backends=[])
    def show(self, request: Request) -> Response:
        only_query(request.query_params, "job_identifier", *FIELDS_SET)
        return self._render(self._job_in_query(request), self._query_selection())

    @extend_schema(
        summary="The statuses an update may move the job to now, in sequence (CRM.COM's method)",
        parameters=[JOB_QUERY],
        responses={
            200: enveloped(TypeStatusSerializer(many=True), "NextStatusesEnvelope"),
            **ONE_JOB_ERRORS,
        },
    )
    @action(
        detail=False,
        methods=["get"],
        url_path="all_scopes/get_next_status_sequence",
        filter_backends=[],
    )
    def get_next_status_sequence(self, request: Request) -> Response:
        only_query(request.query_params, "job_identifier")
        job = self.get_queryset().filter(**self._job_in_query(request)).first()
        if job is None:
            raise JobNotFound("No job matches job_identifier.", "Check the id or number.")
        entries = next_statuses(job)
        return Response(envelope(TypeStatusSerializer(entries, many=True).data))

    def _job_in_query(self, request: Request) -> dict[str, Any]:
        """The ORM lookup of the job `job_identifier` names in the query."""
        raw = request.query_params.get("job_identifier")
        if not raw:
            raise MandatoryParameterMissing(
                "job_identifier is missing.", "Send job_identifier=number=JB00019 (or id=19)."
            )
        identifier = query_identifier(raw, fields=JOB_IDENTIFIER_FIELDS, parameter="job_identifier")
        return {"pk": identifier["id"]} if "id" in identifier else identifier

    def _crm_page(self, request: Request, narrowed: Q) -> Response:
        params = request.query_params
        only_query(params, "type_identifier", *FIELDS_SET, *PAGING)
        answer = job_answer(self._query_selection())
        jobs = answer.shape(self.get_queryset()).filter(narrowed)
        if "type_identifier" in params:
            identifier = query_identifier(
                params["type_identifier"],
                fields=CATALOG_IDENTIFIER_FIELDS,
                parameter="type_identifier",
            )
            jobs = jobs.filter(type=job_type_by_identifier(identifier, parameter="type_identifier"))
        return self._page(jobs, answer)
