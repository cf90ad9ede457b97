"""The REST door: parse the request, call the service, render the job. Nothing else.

CRM.COM's method is `POST jobs/all_scopes/start_progress` (the job named in the body); ours adds
`POST jobs/{id}/start_progress`. Both are actions on one viewset and call `jobs.services`.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import AuthenticationFailed, NotFound
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import SlidingToken

from jobs.api.authentication import LoginThrottle
from jobs.api.envelope import envelope
from jobs.api.filters import JobFilter
from jobs.api.pagination import CrmPagination
from jobs.api.schema import NON_EMPTY_TEXT, TextField, enveloped, errors
from jobs.api.serializers import (
    JobSerializer,
    StartProgressByIdentifierInput,
    StartProgressInput,
    fields_set_schema,
    parse_fields_set,
    shaped,
)
from jobs.exceptions import JobNotFound, PermissionDenied
from jobs.models import Channel, Job
from jobs.services import MAX_ID, ensure_can_start, start_progress

START_ACTIONS = {"start_progress", "start_progress_by_identifier"}


class JobPermission(BasePermission):
    """Viewing needs jobs.view_job; starting needs jobs.start_progress_job (checked by the
    service's own function, so the API refuses early for the same reason the service would)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if view.action in START_ACTIONS:
            ensure_can_start(request.user)
        elif not request.user.has_perm("jobs.view_job"):
            raise PermissionDenied(
                "You may not view jobs.", "Ask an administrator for the permission jobs.view_job."
            )
        return True


NUMBER_FILTER = OpenApiParameter("number", NON_EMPTY_TEXT, description="job number, e.g. JB00019")
ID_FILTERS = [
    OpenApiParameter(name, {"type": "integer", "minimum": 1, "maximum": MAX_ID}, description=text)
    for name, text in (
        ("type", "job type id"),
        ("status", "job status id"),
        ("assigned_user", "id of the user the job is assigned to"),
    )
]
JOB_ID_IN_PATH = OpenApiParameter(
    "id", {"type": "integer", "minimum": 1, "maximum": MAX_ID}, OpenApiParameter.PATH
)
FIELDS_SET_QUERY = [
    OpenApiParameter("fields_set", fields_set_schema()),
    OpenApiParameter("fields", fields_set_schema(), description="Alias of fields_set."),
]
JOB_ENVELOPE = enveloped(JobSerializer(), "JobEnvelope")
START_ERRORS = (
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
    """The id in the path; beyond the id column's range no job can have it."""
    value = int(raw)
    if not 1 <= value <= MAX_ID:
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
        serializer = JobSerializer(selection=selection)
        job = shaped(Job.objects.filter(pk=job_pk), serializer).first()
        if job is None:
            raise JobNotFound("No job has this id.", "Check the id and try again.")
        serializer.instance = job
        return Response(envelope(serializer.data))

    @extend_schema(
        summary="List jobs, newest first",
        parameters=[*FIELDS_SET_QUERY, *ID_FILTERS, NUMBER_FILTER],
        responses={
            200: JobSerializer(many=True),
            **errors("AUTHENTICATION_FAILED", "PERMISSION_DENIED", "INVALID_PARAMETER"),
        },
    )
    def list(self, request: Request) -> Response:
        selection = self._query_selection()
        template = JobSerializer(selection=selection)
        jobs = self.filter_queryset(shaped(self.get_queryset(), template))
        page = self.paginate_queryset(jobs)
        return self.get_paginated_response(JobSerializer(page, many=True, selection=selection).data)

    @extend_schema(
        summary="One job",
        parameters=[JOB_ID_IN_PATH, *FIELDS_SET_QUERY],
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
        summary="Start progress on the job named in the body (CRM.COM's method)",
        request=StartProgressByIdentifierInput,
        responses={200: JOB_ENVELOPE, **errors("MANDATORY_PARAMETER_MISSING", *START_ERRORS)},
    )
    @action(detail=False, methods=["post"], url_path="all_scopes/start_progress")
    def start_progress_by_identifier(self, request: Request) -> Response:
        body = StartProgressByIdentifierInput(data=request.data)
        body.is_valid(raise_exception=True)
        return self._start(body.validated_data["job_identifier"], body.validated_data)

    @extend_schema(
        summary="Start progress on this job",
        parameters=[JOB_ID_IN_PATH],
        request=StartProgressInput,
        responses={200: JOB_ENVELOPE, **errors(*START_ERRORS)},
    )
    @action(detail=True, methods=["post"], url_path="start_progress")
    def start_progress(self, request: Request, pk: str) -> Response:
        body = StartProgressInput(data=request.data)
        body.is_valid(raise_exception=True)
        return self._start({"id": job_id(pk)}, body.validated_data)

    def _start(self, job_identifier: dict[str, Any], body: dict[str, Any]) -> Response:
        job = start_progress(
            job=job_identifier,
            status=body.get("status_identifier"),
            user=self.request.user,
            channel=Channel.API,
        )
        return self._render(job.pk, body.get("fields_set"))


class LoginInput(serializers.Serializer):
    # Credentials are taken as typed (TextField): a password may begin or end with a space.
    username = TextField()
    password = TextField(style={"input_type": "password"})
    organisation = serializers.CharField(
        required=False, allow_blank=True, help_text="accepted and ignored"
    )


class TokenView(APIView):
    """Log in: a token valid for 2 hours (CRM.COM's lifetime)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginThrottle]

    @extend_schema(
        summary="Log in",
        request=LoginInput,
        responses={
            200: enveloped(
                inline_serializer("Token", {"token": serializers.CharField()}), "TokenEnvelope"
            ),
            **errors(
                "MANDATORY_PARAMETER_MISSING",
                "INVALID_PARAMETER",
                "AUTHENTICATION_FAILED",
                "THROTTLED",
            ),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        body = LoginInput(data=request.data)
        body.is_valid(raise_exception=True)
        user = authenticate(
            request._request,
            username=body.validated_data["username"],
            password=body.validated_data["password"],
        )
        if user is None:
            raise AuthenticationFailed("Wrong username or password, or the user is inactive.")
        return Response(envelope({"token": str(SlidingToken.for_user(user))}))


class TokenReleaseInput(serializers.Serializer):
    token = TextField()


class TokenReleaseView(APIView):
    """Log out: the token stops working at once."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Release a token",
        request=TokenReleaseInput,
        responses={
            200: enveloped(serializers.JSONField(allow_null=True), "ReleaseEnvelope"),
            **errors("MANDATORY_PARAMETER_MISSING", "INVALID_PARAMETER", "AUTHENTICATION_FAILED"),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        body = TokenReleaseInput(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            SlidingToken(body.validated_data["token"]).blacklist()
        except TokenError:
            raise AuthenticationFailed("The token is invalid, expired or released.") from None
        return Response(envelope(None))


class EndpointNotFound(APIView):
    """Anything under the root that matches no endpoint: the envelope, never an HTML page."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    schema = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        raise NotFound
