"""The REST door: parse the request, call the service, render the job. Nothing else.

Every transition declared in `jobs.transitions` gets CRM.COM's method,
`POST jobs/all_scopes/<transition>` (the job named in the body), and ours,
`POST jobs/{id}/<transition>`: two actions on one viewset, made from the declaration, which call
`jobs.services.job_transition`.
"""

from __future__ import annotations

from typing import Any

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs.api.envelope import envelope
from jobs.api.pagination import CrmPagination
from jobs.api.schema import ID_IN_PATH, NON_EMPTY_TEXT, ROW_ID, enveloped, errors
from jobs.api.serializers import (
    JobSerializer,
    TypeStatusSerializer,
    fields_set_schema,
    job_answer,
    parse_fields_set,
    transition_input,
)
from jobs.exceptions import (
    InvalidIdentifier,
    InvalidParameter,
    JobNotFound,
    JobTypeNotFound,
    MandatoryParameterMissing,
)
from jobs.filters import JobFilter
from jobs.identifiers import (
    CATALOG_IDENTIFIER_FIELDS,
    JOB_IDENTIFIER_FIELDS,
    MAX_ID,
    id_in_range,
    is_number,
    parse_identifier,
)
from jobs.models import Channel, Job, LifeCycleState
from jobs.selectors import job_type_by_identifier, statuses_of_type
from jobs.services import ensure_may_view, ensure_permitted, job_transition
from jobs.transitions import TRANSITIONS, JobTransition

# The viewset's action names for each transition: ours (the job in the path) and CRM.COM's.
TRANSITION_ACTIONS = {
    **TRANSITIONS,
    **{f"{name}_by_identifier": declared for name, declared in TRANSITIONS.items()},
}


class JobPermission(BasePermission):
    """Viewing needs jobs.view_job; a transition needs its own permission (checked by the
    service's own function, so the API refuses early for the same reason the service would)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        action = getattr(view, "action", None)
        if action in TRANSITION_ACTIONS:
            ensure_permitted(request.user, TRANSITION_ACTIONS[action])
        else:
            ensure_may_view(request.user)
        return True


TEXT_FILTERS = [
    OpenApiParameter("number", NON_EMPTY_TEXT, description="job number, e.g. JB00019"),
    OpenApiParameter(
        "search",
        NON_EMPTY_TEXT,
        description='every word (or "quoted phrase") in the job\'s number or description',
    ),
]
ID_FILTERS = [
    OpenApiParameter(name, ROW_ID, description=text)
    for name, text in (
        ("type", "job type id"),
        ("status", "job status id"),
        ("assigned_user", "id of the user the job is assigned to"),
    )
]
FIELDS_SET_QUERY = [
    OpenApiParameter("fields_set", fields_set_schema()),
    OpenApiParameter("fields", fields_set_schema(), description="Alias of fields_set."),
]
JOB_ENVELOPE = enveloped(JobSerializer(), "JobEnvelope")
TRANSITION_ERRORS = (
    "AUTHENTICATION_FAILED",
    "PERMISSION_DENIED",
    "INVALID_IDENTIFIER",
    "INVALID_PARAMETER",
    "JOB_NOT_FOUND",
    "STATUS_NOT_FOUND",
    "STATUS_NOT_ALLOWED",
    "NO_DEFAULT_STATUS",
    "JOB_STATE_CONFLICT",
)


def job_id(raw: str) -> int:
    value = id_in_range(raw)
    if value is None:
        raise JobNotFound("No job has this id.", "Check the id and try again.")
    return value


class JobViewSet(viewsets.GenericViewSet):
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

    def _render(self, job_pk: int, selection: Any) -> Response:
        answer = job_answer(selection)
        job = answer.shape(Job.objects.filter(pk=job_pk)).first()
        if job is None:
            raise JobNotFound("No job has this id.", "Check the id and try again.")
        return Response(envelope(answer.render(job)))

    @extend_schema(
        summary="List jobs, newest first",
        parameters=[*FIELDS_SET_QUERY, *ID_FILTERS, *TEXT_FILTERS],
        responses={
            200: JobSerializer(many=True),
            **errors("AUTHENTICATION_FAILED", "PERMISSION_DENIED", "INVALID_PARAMETER"),
        },
    )
    def list(self, request: Request) -> Response:
        answer = job_answer(self._query_selection())
        jobs = self.filter_queryset(answer.shape(self.get_queryset()))
        page = self.paginate_queryset(jobs)
        return self.get_paginated_response([answer.render(job) for job in page])

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
        return self._render(job_id(pk), self._query_selection())

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

    def _transition(
        self, declared: JobTransition, job_identifier: dict[str, Any], body: dict[str, Any]
    ) -> Response:
        answer = job_answer(body.get("fields_set"))
        # The answer is the row the service locked and changed, loaded with what the selection
        # renders: no second read.
        job = job_transition(
            transition=declared,
            job=job_identifier,
            status=body.get("status_identifier"),
            user=self.request.user,
            channel=Channel.API,
            load=answer.columns,
            **{p.name: body.get(p.api_name) for p in declared.parameters},
        )
        return Response(envelope(answer.render(job)))


def names_job(identifier: dict[str, Any], pk: int) -> bool:
    """Whether a job identifier ({"id": …} or {"number": …}) names the job with this id."""
    if "id" in identifier:
        return identifier["id"] == pk
    return Job.objects.filter(pk=pk, number=identifier["number"]).exists()


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


def _transition_actions(declared: JobTransition) -> dict[str, Any]:
    """The two actions of one declared transition: CRM.COM's (the job in the body) and ours (the
    job in the path). Both parse the body, call the service and render the job alike."""
    by_identifier_body = transition_input(declared, by_identifier=True)
    in_path_body = transition_input(declared, by_identifier=False)
    codes = (*TRANSITION_ERRORS, *(p.not_found.code for p in declared.parameters))

    def by_identifier(self: JobViewSet, request: Request) -> Response:
        body = by_identifier_body(data=request.data)
        body.is_valid(raise_exception=True)
        return self._transition(
            declared, body.validated_data["job_identifier"], body.validated_data
        )

    def in_path(self: JobViewSet, request: Request, pk: str) -> Response:
        body = in_path_body(data=request.data)
        body.is_valid(raise_exception=True)
        in_path = job_id(pk)
        # Not in the body's schema (the path names the job), but a client that sends one anyway
        # must not see another job moved than the one it named.
        sent = request.data.get("job_identifier") if isinstance(request.data, dict) else None
        named = None
        if sent is not None:
            named = parse_identifier(sent, fields=JOB_IDENTIFIER_FIELDS, parameter="job_identifier")
        if named is not None and not names_job(named, in_path):
            raise InvalidParameter(
                "job_identifier names another job than the path.",
                "Leave job_identifier out, or name the job in the path.",
            )
        return self._transition(declared, {"id": in_path}, body.validated_data)

    by_identifier.__name__ = f"{declared.name}_by_identifier"
    in_path.__name__ = declared.name
    return {
        by_identifier.__name__: extend_schema(
            summary=f"{declared.label}: the job named in the body (CRM.COM's method)",
            request=by_identifier_body,
            responses={200: JOB_ENVELOPE, **errors("MANDATORY_PARAMETER_MISSING", *codes)},
        )(
            action(detail=False, methods=["post"], url_path=f"all_scopes/{declared.name}")(
                by_identifier
            )
        ),
        in_path.__name__: extend_schema(
            summary=f"{declared.label}: this job",
            parameters=[ID_IN_PATH],
            request=in_path_body,
            responses={200: JOB_ENVELOPE, **errors(*codes)},
        )(action(detail=True, methods=["post"], url_path=declared.name)(in_path)),
    }


for _declared in TRANSITIONS.values():
    for _name, _method in _transition_actions(_declared).items():
        setattr(JobViewSet, _name, _method)


class EndpointNotFound(APIView):
    """Anything under the root that matches no endpoint: the envelope, never an HTML page."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    schema = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        raise NotFound
