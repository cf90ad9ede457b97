"""Background runs over the API (ours, beside CRM.COM's methods): `POST transition_runs` queues a
transition on every job a filter selects (the names of `GET jobs`) and answers 202 at once;
`GET transition_runs`, `GET transition_runs/{id}` and `POST transition_runs/{id}/stop` follow and
stop it. A run that ends also announces itself as the event `transition_run.finished`.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import (
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from jobs.api.envelope import envelope
from jobs.api.pagination import CrmPagination
from jobs.api.schema import ID_IN_PATH, NON_EMPTY_TEXT, ROW_ID, TextField, enveloped, errors
from jobs.api.serializers import CatalogIdentifierField
from jobs.exceptions import (
    InvalidParameter,
    MandatoryParameterMissing,
    TransitionRunNotFound,
)
from jobs.identifiers import id_in_range
from jobs.models import Channel, LifeCycleState, RunState, TransitionRun
from jobs.services import Selection, ensure_may_view, get_run, queue_run, stop_run
from jobs.transitions import TRANSITIONS, JobTransition

PARAMETERS = {p.api_name: p for t in TRANSITIONS.values() for p in t.parameters}


class ReadRuns(BasePermission):
    """Reading runs needs jobs.view_job; queueing and stopping, the transition's permission
    (which the service checks)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if view.action in ("list", "retrieve"):
            ensure_may_view(request.user)
        return True


FILTER_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "life_cycle_state": {"type": "string", "enum": LifeCycleState.values},
        "type": {**ROW_ID, "description": "job type id"},
        "status": {**ROW_ID, "description": "job status id"},
        "assigned_user": {**ROW_ID, "description": "id of the user the job is assigned to"},
        "number": {**NON_EMPTY_TEXT, "description": "job number"},
        "search": {**NON_EMPTY_TEXT, "description": "every word in the number or description"},
    },
    "description": "The jobs to move, in the names of GET jobs; every job when left out. Frozen "
    "when queued: jobs created afterwards are not part of the run.",
}


JSON_TYPES = {"integer": (int, "a whole number"), "string": (str, "text")}


@extend_schema_field(FILTER_SCHEMA)
class RunFilterField(serializers.Field):
    """An object of names and values, each of the JSON type the schema gives it; the names and
    the values themselves are checked by `GET jobs`' own filter when the run is queued
    (`Selection.of_filter`)."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise InvalidParameter("filter must be an object.", "Send filter as {name: value}.")
        for name, value in data.items():
            schema = FILTER_SCHEMA["properties"].get(name, {})
            kind, words = JSON_TYPES.get(schema.get("type"), (object, ""))
            if not isinstance(value, kind) or isinstance(value, bool):
                raise InvalidParameter(
                    f"filter {str(name)[:100]} must be {words or 'a value'}.",
                    "Correct the filter's value.",
                )
        return data


def run_input(declared: JobTransition) -> type[serializers.Serializer]:
    """The body of POST transition_runs for one transition (`CancelRunInput`): the OpenAPI
    document offers one per transition, told apart by `transition`."""
    fields: dict[str, serializers.Field] = {
        "token": TextField(required=False, help_text="CRM.COM style: the token in the body"),
        "transition": serializers.ChoiceField(choices=[declared.name]),
        "filter": RunFilterField(required=False),
        "status_identifier": CatalogIdentifierField(
            required=False, help_text="default: each job type's default status"
        ),
    }
    for parameter in declared.parameters:
        fields[parameter.api_name] = CatalogIdentifierField(
            required=False, help_text=f"default: the type's {parameter.label.lower()}, if any"
        )
    words = "".join(word.capitalize() for word in declared.name.split("_"))
    return type(f"{words}RunInput", (serializers.Serializer,), fields)


RUN_INPUTS = {name: run_input(declared) for name, declared in TRANSITIONS.items()}


def run_body(data: Any) -> dict[str, Any]:
    """The body, read by its transition's serializer (which, as every body here, passes over
    names it does not know)."""
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


def run_id(raw: str) -> int:
    value = id_in_range(raw)
    if value is None:
        raise TransitionRunNotFound("No transition run has this id.", "Check the id.")
    return value


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
        parameters=[ID_IN_PATH],
        responses={
            200: RUN_ENVELOPE,
            **errors("AUTHENTICATION_FAILED", "PERMISSION_DENIED", "TRANSITION_RUN_NOT_FOUND"),
        },
    )
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(envelope(TransitionRunSerializer(get_run(run_id(pk))).data))

    @extend_schema(
        summary="Queue a transition on every job a filter selects (answers at once)",
        request=PolymorphicProxySerializer(
            component_name="TransitionRunInput",
            serializers=RUN_INPUTS,
            resource_type_field_name="transition",
        ),
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
        given = run_body(request.data)
        declared = TRANSITIONS[given["transition"]]
        run = queue_run(
            transition=declared,
            selection=Selection.of_filter(given.get("filter", {})),
            status=given.get("status_identifier"),
            user=request.user,
            channel=Channel.API,
            **{p.name: given.get(p.api_name) for p in declared.parameters},
        )
        answer = TransitionRunSerializer(run).data  # as written, with its user: no second read
        return Response(envelope(answer), status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Stop a run after the batch in hand (a queued run at once; an ended one stays)",
        parameters=[ID_IN_PATH],
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
