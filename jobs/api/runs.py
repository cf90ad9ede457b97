"""Background runs over the API (ours, beside CRM.COM's methods): `POST transition_runs` queues a
transition on every job a filter selects (the names of `GET jobs`) and answers 202 at once;
`GET transition_runs`, `GET transition_runs/{id}` and `POST transition_runs/{id}/stop` follow and
stop it. A run that ends also announces itself as the event `transition_run.finished`.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from jobs.api.envelope import envelope
from jobs.api.pagination import CrmPagination
from jobs.api.schema import TextField, enveloped, errors
from jobs.api.serializers import CatalogIdentifierField
from jobs.exceptions import InvalidParameter, PermissionDenied, TransitionRunNotFound
from jobs.filters import JobFilter
from jobs.identifiers import MAX_ID, is_number
from jobs.models import Channel, LifeCycleState, RunState, TransitionRun
from jobs.services import Selection, get_run, queue_run, stop_run
from jobs.transitions import TRANSITIONS

PARAMETERS = {p.api_name: p for t in TRANSITIONS.values() for p in t.parameters}


class ReadRuns(BasePermission):
    """Reading runs needs jobs.view_job; queueing and stopping, the transition's permission
    (which the service checks)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if view.action in ("list", "retrieve") and not request.user.has_perm("jobs.view_job"):
            raise PermissionDenied(
                "You may not view jobs.", "Ask an administrator for the permission jobs.view_job."
            )
        return True


class RunFilterInput(serializers.Serializer):
    """The jobs to move, in the names of GET jobs; every job when empty. Frozen when queued:
    jobs created afterwards are not part of the run."""

    life_cycle_state = serializers.ChoiceField(choices=LifeCycleState.values, required=False)
    type = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False)
    status = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False)
    assigned_user = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False)
    number = TextField(required=False)
    search = TextField(required=False)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(JobFilter.base_filters))
            if unknown:
                raise InvalidParameter(
                    f"filter has no {unknown[0][:100]}.",
                    f"Filter by {', '.join(JobFilter.base_filters)}.",
                )
        return super().to_internal_value(data)


class TransitionRunInput(serializers.Serializer):
    token = TextField(required=False, help_text="CRM.COM style: the token in the body")
    transition = serializers.ChoiceField(choices=list(TRANSITIONS))
    filter = RunFilterInput(required=False)
    status_identifier = CatalogIdentifierField(
        required=False, help_text="default: each job type's default status for the transition"
    )
    cancellation_reason_identifier = CatalogIdentifierField(
        required=False, help_text="cancel only; default: the type's cancellation reason, if any"
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        taken = {p.api_name for p in TRANSITIONS[data["transition"]].parameters}
        for name in PARAMETERS.keys() - taken:
            if name in data:
                raise InvalidParameter(
                    f"{name} does not go with {data['transition']}.", f"Leave {name} out."
                )
        return data


class UserReference(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class TransitionRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    transition = serializers.ChoiceField(choices=list(TRANSITIONS))
    state = serializers.ChoiceField(choices=RunState.values)
    selection = serializers.SerializerMethodField(
        help_text='{"filter": {…}, "up_to_id": n}: the filter frozen when queued (jobs up to that '
        'id); or {"job_count": n} for a run of jobs named one by one'
    )
    choices = serializers.JSONField(
        help_text='the status and extra parameters asked for, by id: {"status": {"id": 5}}'
    )
    requested_by = UserReference()
    channel = serializers.ChoiceField(choices=Channel.values)
    selected = serializers.IntegerField(
        allow_null=True, help_text="jobs in the selection when the run started; null until then"
    )
    moved = serializers.IntegerField(help_text="jobs the run moved")
    moved_first = serializers.ListField(
        child=serializers.CharField(), help_text="the first numbers moved"
    )
    skipped = serializers.JSONField(
        help_text='by error code: {"NO_DEFAULT_STATUS": {"count": 2, "numbers": ["JB00001"]}}'
    )
    stop_requested = serializers.BooleanField()
    created_date = serializers.DateTimeField()
    started_date = serializers.DateTimeField(allow_null=True)
    finished_date = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(help_text="why a FAILED run failed; empty otherwise")

    def get_selection(self, run: TransitionRun) -> dict[str, Any]:
        if "ids" in run.selection:
            return {"job_count": len(run.selection["ids"])}
        return run.selection


RUN_ENVELOPE = enveloped(TransitionRunSerializer(), "TransitionRunEnvelope")
RUN_ID_IN_PATH = OpenApiParameter(
    "id", {"type": "integer", "minimum": 1, "maximum": MAX_ID}, OpenApiParameter.PATH
)


def run_id(raw: str) -> int:
    if not is_number(raw) or not 1 <= int(raw) <= MAX_ID:
        raise TransitionRunNotFound("No transition run has this id.", "Check the id.")
    return int(raw)


class TransitionRunViewSet(viewsets.GenericViewSet):
    queryset = TransitionRun.objects.select_related("requested_by").order_by("-id")
    serializer_class = TransitionRunSerializer
    permission_classes = [IsAuthenticated, ReadRuns]
    pagination_class = CrmPagination
    lookup_value_regex = r"[0-9]+"

    @extend_schema(
        summary="Background transition runs, newest first",
        responses={
            200: TransitionRunSerializer(many=True),
            **errors("AUTHENTICATION_FAILED", "PERMISSION_DENIED", "INVALID_PARAMETER"),
        },
    )
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(TransitionRunSerializer(page, many=True).data)

    @extend_schema(
        summary="One background transition run: its state and counts",
        parameters=[RUN_ID_IN_PATH],
        responses={
            200: RUN_ENVELOPE,
            **errors("AUTHENTICATION_FAILED", "PERMISSION_DENIED", "TRANSITION_RUN_NOT_FOUND"),
        },
    )
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(envelope(TransitionRunSerializer(get_run(run_id(pk))).data))

    @extend_schema(
        summary="Queue a transition on every job a filter selects (answers at once)",
        request=TransitionRunInput,
        responses={
            202: RUN_ENVELOPE,
            **errors(
                "AUTHENTICATION_FAILED",
                "PERMISSION_DENIED",
                "MANDATORY_PARAMETER_MISSING",
                "INVALID_IDENTIFIER",
                "INVALID_PARAMETER",
                "STATUS_NOT_FOUND",
                *(p.not_found.code for p in PARAMETERS.values()),
            ),
        },
    )
    def create(self, request: Request) -> Response:
        body = TransitionRunInput(data=request.data)
        body.is_valid(raise_exception=True)
        given = body.validated_data
        declared = TRANSITIONS[given["transition"]]
        run = queue_run(
            transition=declared,
            selection=Selection.of_filter(given.get("filter", {})),
            status=given.get("status_identifier"),
            user=request.user,
            channel=Channel.API,
            **{p.name: given.get(p.api_name) for p in declared.parameters},
        )
        answer = TransitionRunSerializer(get_run(run.pk)).data
        return Response(envelope(answer), status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Stop a run after the batch in hand (a queued run at once; an ended one stays)",
        parameters=[RUN_ID_IN_PATH],
        request=None,
        responses={
            200: RUN_ENVELOPE,
            **errors("AUTHENTICATION_FAILED", "PERMISSION_DENIED", "TRANSITION_RUN_NOT_FOUND"),
        },
    )
    @action(detail=True, methods=["post"])
    def stop(self, request: Request, pk: str) -> Response:
        run = stop_run(run_id(pk), user=request.user)
        return Response(envelope(TransitionRunSerializer(run).data))
