"""The transition endpoints, written out: for each transition, CRM.COM's method
`POST jobs/all_scopes/<transition>` (the job named in the body) and ours,
`POST jobs/{id}/<transition>` (the job in the path). Each reads its declared body
(`jobs.api.inputs`), calls `jobs.services.job_transition` and renders the job it moved.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from jobs.api import inputs
from jobs.api.etags import IF_MATCH, job_response, precondition
from jobs.api.schema import ID_IN_PATH, errors
from jobs.api.serializers import JOB_ENVELOPE, job_answer
from jobs.exceptions import InvalidParameter, JobNotFound
from jobs.identifiers import JOB_IDENTIFIER_FIELDS, id_in_range, parse_identifier
from jobs.models import Channel, Job
from jobs.services import job_transition
from jobs.transitions import CANCEL, COMPLETE, START_PROGRESS, SUBMIT, JobTransition

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
    "PRECONDITION_FAILED",
)


def job_id(raw: str) -> int:
    """The id in a path; one no id column can hold names no job."""
    value = id_in_range(raw)
    if value is None:
        raise JobNotFound("No job has this id.", "Check the id and try again.")
    return value


def _codes(declared: JobTransition) -> tuple[str, ...]:
    return (*TRANSITION_ERRORS, *(p.not_found.code for p in declared.parameters))


def crm_method(declared: JobTransition, body: type[serializers.Serializer]) -> Callable:
    """CRM.COM's `POST jobs/all_scopes/<transition>`, documented with its body."""

    def decorate(method: Callable) -> Callable:
        routed = action(detail=False, methods=["post"], url_path=f"all_scopes/{declared.name}")
        return extend_schema(
            summary=f"{declared.label}: the job named in the body (CRM.COM's method)",
            parameters=[IF_MATCH],
            request=body,
            responses={
                200: JOB_ENVELOPE,
                **errors("MANDATORY_PARAMETER_MISSING", *_codes(declared)),
            },
        )(routed(method))

    return decorate


def rest_method(declared: JobTransition, body: type[serializers.Serializer]) -> Callable:
    """Ours: `POST jobs/{id}/<transition>`, documented with its body."""

    def decorate(method: Callable) -> Callable:
        routed = action(detail=True, methods=["post"], url_path=declared.name)
        return extend_schema(
            summary=f"{declared.label}: this job",
            parameters=[ID_IN_PATH, IF_MATCH],
            request=body,
            responses={200: JOB_ENVELOPE, **errors(*_codes(declared))},
        )(routed(method))

    return decorate


def read(body: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    given = body(data=request.data)
    given.is_valid(raise_exception=True)
    return given.validated_data


def names_job(identifier: dict[str, Any], pk: int) -> bool:
    """Whether a job identifier ({"id": …} or {"number": …}) names the job with this id."""
    if "id" in identifier:
        return identifier["id"] == pk
    return Job.objects.filter(pk=pk, number=identifier["number"]).exists()


def job_in_path(request: Request, pk: str) -> dict[str, int]:
    """The job the path names, as an identifier. A job_identifier sent in the body anyway must
    name the same job: it must not make the request act on another one."""
    in_path = job_id(pk)
    sent = request.data.get("job_identifier")
    if sent is not None:
        named = parse_identifier(sent, fields=JOB_IDENTIFIER_FIELDS, parameter="job_identifier")
        if not names_job(named, in_path):
            raise InvalidParameter(
                "job_identifier names another job than the path.",
                "Leave job_identifier out, or name the job in the path.",
            )
    return {"id": in_path}


class TransitionEndpoints:
    """The JobViewSet's transition endpoints: two per transition."""

    @crm_method(SUBMIT, inputs.SubmitByIdentifierInput)
    def submit_by_identifier(self, request: Request) -> Response:
        return self._by_identifier(SUBMIT, read(inputs.SubmitByIdentifierInput, request))

    @rest_method(SUBMIT, inputs.SubmitInput)
    def submit(self, request: Request, pk: str) -> Response:
        return self._in_path(SUBMIT, read(inputs.SubmitInput, request), request, pk)

    @crm_method(START_PROGRESS, inputs.StartProgressByIdentifierInput)
    def start_progress_by_identifier(self, request: Request) -> Response:
        body = read(inputs.StartProgressByIdentifierInput, request)
        return self._by_identifier(START_PROGRESS, body)

    @rest_method(START_PROGRESS, inputs.StartProgressInput)
    def start_progress(self, request: Request, pk: str) -> Response:
        body = read(inputs.StartProgressInput, request)
        return self._in_path(START_PROGRESS, body, request, pk)

    @crm_method(COMPLETE, inputs.CompleteByIdentifierInput)
    def complete_by_identifier(self, request: Request) -> Response:
        return self._by_identifier(COMPLETE, read(inputs.CompleteByIdentifierInput, request))

    @rest_method(COMPLETE, inputs.CompleteInput)
    def complete(self, request: Request, pk: str) -> Response:
        return self._in_path(COMPLETE, read(inputs.CompleteInput, request), request, pk)

    @crm_method(CANCEL, inputs.CancelByIdentifierInput)
    def cancel_by_identifier(self, request: Request) -> Response:
        return self._by_identifier(CANCEL, read(inputs.CancelByIdentifierInput, request))

    @rest_method(CANCEL, inputs.CancelInput)
    def cancel(self, request: Request, pk: str) -> Response:
        return self._in_path(CANCEL, read(inputs.CancelInput, request), request, pk)

    def _by_identifier(self, declared: JobTransition, body: dict[str, Any]) -> Response:
        return self._move(declared, body["job_identifier"], body)

    def _in_path(
        self, declared: JobTransition, body: dict[str, Any], request: Request, pk: str
    ) -> Response:
        return self._move(declared, job_in_path(request, pk), body)

    def _move(
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
            precondition=precondition(self.request),
            **{p.name: body.get(p.api_name) for p in declared.parameters},
        )
        return job_response(answer, job)
