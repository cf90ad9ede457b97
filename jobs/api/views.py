"""The REST door for jobs: parse the request, call the service or a selector, render the job.

`GET jobs`, `GET jobs/{id}`, `GET jobs/{id}/history` and CRM.COM's statuses look-up live here;
the transition endpoints, two per transition, in `jobs.api.transitions`.
"""

from __future__ import annotations

from typing import Any

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import SAFE_METHODS, AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs.api.envelope import envelope
from jobs.api.etags import ETAG_COLUMNS, job_response
from jobs.api.inputs import FIELDS_SET, FIELDS_SET_QUERY, PAGING, only_query
from jobs.api.intake import IntakeEndpoints
from jobs.api.pagination import CrmPagination
from jobs.api.reads import ReadEndpoints
from jobs.api.schema import ID_IN_PATH, NON_EMPTY_TEXT, ROW_ID, enveloped, errors
from jobs.api.serializers import (
    JOB_ENVELOPE,
    JobSerializer,
    TransitionLogSerializer,
    TypeStatusSerializer,
    job_answer,
    parse_fields_set,
)
from jobs.api.transitions import TransitionEndpoints, job_id
from jobs.api.updates import UpdateEndpoints
from jobs.exceptions import (
    InvalidIdentifier,
    InvalidParameter,
    JobNotFound,
    JobTypeNotFound,
    MandatoryParameterMissing,
)
from jobs.filters import FILTER_DESCRIPTIONS, JobFilter
from jobs.identifiers import CATALOG_IDENTIFIER_FIELDS, MAX_ID, is_number
from jobs.models import Job, LifeCycleState
from jobs.selectors import job_history, job_type_by_identifier, statuses_of_type
from jobs.services import ensure_may_view
from jobs.visibility import sight_of


class JobPermission(BasePermission):
    """Reading jobs needs jobs.view_job. A transition's own permission is the service's to check
    (jobs.services.permissions.ensure_permitted), once, as for every door."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method not in SAFE_METHODS:
            return True
        ensure_may_view(request.user)
        return True


# life_cycle_state is documented from the filter itself, with its states.
FILTER_SCHEMAS = {"id": ROW_ID, "text": NON_EMPTY_TEXT, "bool": {"type": "boolean"}}
FILTER_QUERY = [
    OpenApiParameter(name, FILTER_SCHEMAS[kind], description=text)
    for name, (kind, text) in FILTER_DESCRIPTIONS.items()
    if kind != "state"
]


class JobViewSet(
    ReadEndpoints, IntakeEndpoints, UpdateEndpoints, TransitionEndpoints, viewsets.GenericViewSet
):
    queryset = Job.objects.order_by("-created_date", "-id")
    serializer_class = JobSerializer
    permission_classes = [IsAuthenticated, JobPermission]
    filter_backends = [DjangoFilterBackend]
    filterset_class = JobFilter
    pagination_class = CrmPagination
    lookup_value_regex = r"[0-9]+"

    def _query_selection(self) -> Any:
        # `fields` is an alias; each one given must be valid, and fields_set wins if both are.
        params = self.request.query_params
        given = [
            parse_fields_set(params[name]) for name in ("fields_set", "fields") if name in params
        ]
        return given[0] if given else None

    def get_queryset(self) -> Any:
        # Only the jobs the caller sees (jobs.visibility): in the list, its count and each page.
        return super().get_queryset().filter(sight_of(self.request.user).q())

    def _render(self, lookup: dict[str, Any], selection: Any) -> Response:
        """One job the caller sees, by `lookup` ({"pk": 19}, {"number": "JB00019"})."""
        answer = job_answer(selection)
        job = answer.shape(self.get_queryset().filter(**lookup), also=ETAG_COLUMNS).first()
        if job is None:
            by = "has this id" if "pk" in lookup else "matches job_identifier"
            raise JobNotFound(f"No job {by}.", "Check the id and try again.")
        return job_response(answer, job)

    def _page(self, jobs: Any, answer: Any) -> Response:
        """A page of `jobs` as `answer` renders them, with the paging."""
        page = self.paginate_queryset(jobs)
        return self.get_paginated_response([answer.render(job) for job in page])

    @extend_schema(
        summary="List jobs, newest first",
        parameters=[*FIELDS_SET_QUERY, *FILTER_QUERY],
        responses={
            200: JobSerializer(many=True),
            **errors("AUTHENTICATION_FAILED", "PERMISSION_DENIED", "INVALID_PARAMETER"),
        },
    )
    def list(self, request: Request) -> Response:
        only_query(request.query_params, *FILTER_DESCRIPTIONS, *FIELDS_SET, *PAGING)
        answer = job_answer(self._query_selection())
        return self._page(self.filter_queryset(answer.shape(self.get_queryset())), answer)

    @extend_schema(
        summary="One job",
        parameters=[ID_IN_PATH, *FIELDS_SET_QUERY],
        responses={
            200: JOB_ENVELOPE,
            **errors(
                "AUTHENTICATION_FAILED", "PERMISSION_DENIED", "INVALID_PARAMETER", "JOB_NOT_FOUND"
            ),
        },
    )
    def retrieve(self, request: Request, pk: str) -> Response:
        only_query(request.query_params, *FIELDS_SET)
        return self._render({"pk": job_id(pk)}, self._query_selection())

    @extend_schema(
        summary="A job's history: its transitions, newest first (ours)",
        parameters=[ID_IN_PATH],
        responses={
            200: TransitionLogSerializer(many=True),
            **errors(
                "AUTHENTICATION_FAILED", "PERMISSION_DENIED", "INVALID_PARAMETER", "JOB_NOT_FOUND"
            ),
        },
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def history(self, request: Request, pk: str) -> Response:
        only_query(request.query_params, *PAGING)
        page = self.paginate_queryset(job_history(job_id(pk), sight_of(request.user)))
        return self.get_paginated_response(TransitionLogSerializer(page, many=True).data)

    @extend_schema(
        summary="The statuses a job type allows (CRM.COM's look-up)",
        parameters=[
            OpenApiParameter(
                "job_type_identifier",
                {
                    "type": "string",
                    "pattern": "^(id=[1-9][0-9]*|(name|alternative_code)=[^\\u0000]+)$",
                },
                required=True,
                description="CRM.COM's form: alternative_code=REPAIR, name=Repair or id=3.",
            ),
            OpenApiParameter(
                "life_cycle_state",
                {"type": "string", "enum": LifeCycleState.values},
                description="only the statuses in this state",
            ),
        ],
        responses={
            200: enveloped(TypeStatusSerializer(many=True), "TypeStatusesEnvelope"),
            **errors(
                "AUTHENTICATION_FAILED",
                "PERMISSION_DENIED",
                "MANDATORY_PARAMETER_MISSING",
                "INVALID_IDENTIFIER",
                "INVALID_PARAMETER",
                "JOB_TYPE_NOT_FOUND",
            ),
        },
    )
    @action(detail=False, methods=["get"], url_path="configuration/statuses/list")
    def statuses(self, request: Request) -> Response:
        params = request.query_params
        only_query(params, "job_type_identifier", "life_cycle_state")
        if not params.get("job_type_identifier"):
            raise MandatoryParameterMissing(
                "job_type_identifier is missing.", "Send job_type_identifier=alternative_code=…."
            )
        job_type = job_type_by_identifier(parse_query_identifier(params["job_type_identifier"]))
        state = params.get("life_cycle_state")
        if state is not None and state not in LifeCycleState.values:
            raise InvalidParameter(
                f"life_cycle_state must be one of {', '.join(LifeCycleState.values)}.",
                "Correct the parameter and retry.",
            )
        entries = statuses_of_type(job_type, state)
        return Response(envelope(TypeStatusSerializer(entries, many=True).data))


def parse_query_identifier(raw: str) -> dict[str, str]:
    """CRM.COM's identifier in a query string: `alternative_code=REPAIR` as {"alternative_code":
    "REPAIR"} (the query parser already split `job_type_identifier=` off)."""
    key, sep, value = raw.partition("=")
    if not sep or key not in CATALOG_IDENTIFIER_FIELDS:
        raise InvalidIdentifier(
            "job_type_identifier must read field=value.",
            f"Use one of {', '.join(CATALOG_IDENTIFIER_FIELDS)}, e.g. alternative_code=REPAIR.",
        )
    if key == "id" and is_number(value) and int(value) > MAX_ID:
        # As for an id in a path: a number past the id column's range names no row.
        raise JobTypeNotFound(
            "No job type matches job_type_identifier.", "Check the job type's id."
        )
    return {key: value}


class EndpointNotFound(APIView):
    """Anything under the root that matches no endpoint: the envelope, never an HTML page."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    schema = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        raise NotFound
