"""Background runs over the API (ours, beside CRM.COM's methods): `POST transition_runs` queues a
transition on every job a filter selects (the names of `GET jobs`) and answers 202 at once;
`GET transition_runs`, `GET transition_runs/{id}` and `POST transition_runs/{id}/stop` follow and
stop it. A run that ends also announces itself as the event `transition_run.finished`.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema, extend_schema_field
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from jobs.api.envelope import envelope
from jobs.api.inputs import PAGING, RUN_INPUTS, StopInput, only_query
from jobs.api.pagination import CrmPagination
from jobs.api.schema import ID_IN_PATH, enveloped, errors
from jobs.api.serializers import UserReferenceSerializer
from jobs.api.words import say
from jobs.exceptions import InvalidParameter, MandatoryParameterMissing, TransitionRunNotFound
from jobs.identifiers import id_in_range
from jobs.models import Channel, RunState, TransitionRun
from jobs.services import Selection, ensure_may_view, forecast, get_run, queue_run, stop_run
from jobs.transitions import TRANSITIONS
from jobs.visibility import runs_seen_by, sight_of

PARAMETERS = {p.api_name: p for t in TRANSITIONS.values() for p in t.parameters}


class ReadRuns(BasePermission):
    """Reading runs needs jobs.view_job; queueing and stopping, the transition's permission
    (which the service checks)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if view.action in ("list", "retrieve"):
            ensure_may_view(request.user)
        return True


def run_body(data: Any) -> dict[str, Any]:
    """The body, read by its transition's serializer, which refuses what it does not take."""
    name = data.get("transition") if isinstance(data, dict) else None
    if name is None:
        raise MandatoryParameterMissing(
            "transition is missing.", f"Send transition: one of {', '.join(TRANSITIONS)}."
        )
    if not isinstance(name, str) or name not in RUN_INPUTS:
        raise InvalidParameter(
            "transition names no transition.", f"Send one of {', '.join(TRANSITIONS)}."
        )
    body = RUN_INPUTS[name](data=data)
    body.is_valid(raise_exception=True)
    return body.validated_data


class SkipGroupSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    numbers = serializers.ListField(child=serializers.CharField(), help_text="the first few")
    reason = serializers.CharField(help_text="the first one's refusal, in words")


class ForecastSerializer(serializers.Serializer):
    """What POST transition_runs with dry_run would do now: nothing is queued."""

    transition = serializers.ChoiceField(choices=list(TRANSITIONS))
    dry_run = serializers.BooleanField(help_text="always true: nothing was queued")
    selected = serializers.IntegerField(help_text="jobs the filter selects now")
    moving = serializers.IntegerField(help_text="jobs a run would move now")
    moving_first = serializers.ListField(
        child=serializers.CharField(), help_text="the first numbers it would move"
    )
    skipped = serializers.DictField(
        child=SkipGroupSerializer(), help_text="the jobs it would skip, by error code"
    )

    def to_representation(self, counted: Any) -> dict[str, Any]:
        return {
            "transition": self.context["transition"],
            "dry_run": True,
            "selected": counted.selected,
            "moving": counted.moving,
            "moving_first": counted.moving_first,
            "skipped": {
                group.code: {
                    "count": group.count,
                    "numbers": group.numbers,
                    "reason": say(group.refusal)[0] if group.refusal else "",
                }
                for group in counted.skipped
            },
        }


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
    requested_by = UserReferenceSerializer()
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
    stopped_by = UserReferenceSerializer(allow_null=True, help_text="who asked it to stop")
    created_date = serializers.DateTimeField()
    started_date = serializers.DateTimeField(allow_null=True)
    finished_date = serializers.DateTimeField(allow_null=True)
    error = serializers.SerializerMethodField(help_text="why a FAILED run failed; null otherwise")

    @extend_schema_field({"type": "string", "nullable": True})
    def get_error(self, run: TransitionRun) -> str | None:
        return run.error or None

    def get_selection(self, run: TransitionRun) -> dict[str, Any]:
        if "ids" in run.selection:
            return {"job_count": len(run.selection["ids"])}
        return run.selection


RUN_ENVELOPE = enveloped(TransitionRunSerializer(), "TransitionRunEnvelope")


def run_id(raw: str) -> int:
    value = id_in_range(raw)
    if value is None:
        raise TransitionRunNotFound("No transition run has this id.", "Check the id.")
    return value


class TransitionRunViewSet(viewsets.GenericViewSet):
    queryset = TransitionRun.objects.select_related("requested_by", "stopped_by").order_by("-id")
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
        only_query(request.query_params, *PAGING)
        runs = self.get_queryset().filter(runs_seen_by(request.user))
        page = self.paginate_queryset(runs)
        return self.get_paginated_response(TransitionRunSerializer(page, many=True).data)

    @extend_schema(
        summary="One background transition run: its state and counts",
        parameters=[ID_IN_PATH],
        responses={
            200: RUN_ENVELOPE,
            **errors(
                "AUTHENTICATION_FAILED",
                "PERMISSION_DENIED",
                "INVALID_PARAMETER",
                "TRANSITION_RUN_NOT_FOUND",
            ),
        },
    )
    def retrieve(self, request: Request, pk: str) -> Response:
        only_query(request.query_params)
        run = get_run(run_id(pk), seen_by=request.user)
        return Response(envelope(TransitionRunSerializer(run).data))

    @extend_schema(
        summary="Queue a transition on every job a filter selects (answers at once)",
        request=PolymorphicProxySerializer(
            component_name="TransitionRunInput",
            serializers=RUN_INPUTS,
            resource_type_field_name="transition",
        ),
        responses={
            202: RUN_ENVELOPE,
            200: enveloped(ForecastSerializer(), "TransitionRunForecastEnvelope"),
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
        given = run_body(request.data)
        declared = TRANSITIONS[given["transition"]]
        choices = {
            "status": given.get("status_identifier"),
            **{p.name: given.get(p.api_name) for p in declared.parameters},
        }
        if given["dry_run"]:
            counted = forecast(
                transition=declared,
                jobs=Selection.of_filter(given.get("filter", {})).jobs(sight_of(request.user)),
                user=request.user,
                channel=Channel.API,
                **choices,
            )
            answer = ForecastSerializer(counted, context={"transition": declared.name}).data
            return Response(envelope(answer))
        run = queue_run(
            transition=declared,
            selection=Selection.of_filter(given.get("filter", {})),
            user=request.user,
            channel=Channel.API,
            **choices,
        )
        answer = TransitionRunSerializer(run).data  # as written, with its user: no second read
        return Response(envelope(answer), status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Stop a run after the batch in hand (a queued run at once; an ended one stays)",
        parameters=[ID_IN_PATH],
        request=StopInput,
        responses={
            200: RUN_ENVELOPE,
            **errors(
                "AUTHENTICATION_FAILED",
                "PERMISSION_DENIED",
                "INVALID_PARAMETER",
                "TRANSITION_RUN_NOT_FOUND",
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def stop(self, request: Request, pk: str) -> Response:
        StopInput(data=request.data).is_valid(raise_exception=True)
        run = stop_run(run_id(pk), user=request.user)
        return Response(envelope(TransitionRunSerializer(run).data))
