"""What each request of the API may send, declared: its body as a class, its query's names.

A request refuses a name it does not declare (INVALID_PARAMETER, naming it and the names it takes):
a parameter passed over while the request goes through does harm, as when `"dry_run": true` once
queued a real run, or a cancellation reason sent to start progress left the job started. The API
document says the same (`additionalProperties: false`, see `jobs.api.schema`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema_field
from rest_framework import serializers

from jobs.api.schema import NON_EMPTY_TEXT, ROW_ID, TextField
from jobs.api.serializers import FieldsTree, allowed_names, fields_set_schema, parse_fields_set
from jobs.exceptions import InvalidIdentifier, InvalidParameter
from jobs.filters import FILTER_DESCRIPTIONS
from jobs.identifiers import (
    CATALOG_IDENTIFIER_FIELDS,
    JOB_IDENTIFIER_FIELDS,
    parse_identifier,
)
from jobs.models import LifeCycleState
from jobs.transitions import CANCEL, COMPLETE, START_PROGRESS, SUBMIT

# What every GET may carry beside its own names: the CRM.COM-style token (a client that sends it
# in the query as well as in the header is not refused) and the sparse fieldset.
TOKEN = ("token",)
FIELDS_SET = ("fields_set", "fields")
FIELDS_SET_QUERY = [
    OpenApiParameter("fields_set", fields_set_schema()),
    OpenApiParameter("fields", fields_set_schema(), description="Alias of fields_set."),
]
PAGING = ("number_of_results", "offset")


def refuse_unknown(given: Iterable[Any], accepted: Iterable[str], *, kind: str) -> None:
    """INVALID_PARAMETER for the first name in `given` that is not `accepted`: a body's
    parameter, a query's filter. Said once, here, for every door of the API."""
    accepted = list(accepted)
    unknown = next((name for name in given if name not in accepted), None)
    if unknown is not None:
        raise InvalidParameter(
            f"{str(unknown)[:100]!r} is not a {kind} of this request.",
            f"Leave it out; the {kind}s it takes are: {', '.join(accepted)}.",
        )


def query_identifier(raw: str, *, fields: tuple[str, ...], parameter: str) -> dict[str, Any]:
    """CRM.COM's identifier in a query string, `job_identifier=number=JB00019`, as
    {"number": "JB00019"} (the query parser already split `job_identifier=` off)."""
    key, sep, value = raw.partition("=")
    if not sep:
        raise InvalidIdentifier(
            f"{parameter} must read field=value.",
            f"Use one of {', '.join(fields)}, e.g. {fields[-1]}=….",
        )
    return parse_identifier({key: value}, fields=fields, parameter=parameter)


def only_query(query: Mapping[str, Any], *accepted: str) -> None:
    """Refuse a query name the endpoint does not take, as a body refuses an unknown field."""
    refuse_unknown(query, (*accepted, *TOKEN), kind="query parameter")


class Body(serializers.Serializer):
    """A request body that takes exactly its declared fields (and the `tolerated` names, which
    its endpoint reads itself)."""

    tolerated: tuple[str, ...] = ()

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            refuse_unknown(data, (*self.fields, *self.tolerated), kind="parameter")
        return super().to_internal_value(data)


class TokenBody(Body):
    """A body that may carry the token, CRM.COM style, instead of the Authorization header."""

    token = TextField(required=False, help_text="CRM.COM style: the token in the body")


class ParsedField(serializers.Field):
    """A field whose value is checked by our own parser, which raises the contract's error code
    (INVALID_IDENTIFIER, INVALID_PARAMETER) instead of DRF's generic ones, null included."""

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        if data is serializers.empty:
            return super().validate_empty_values(data)
        return False, data


@extend_schema_field(
    {
        "oneOf": [
            fields_set_schema(),
            {"type": "array", "minItems": 1, "items": {"enum": list(allowed_names())}},
        ]
    }
)
class FieldsSetField(ParsedField):
    def to_internal_value(self, data: Any) -> FieldsTree | None:
        if data is None:
            raise InvalidParameter(
                "fields_set must not be null.", "Leave fields_set out to get every field."
            )
        return parse_fields_set(data)


def identifier_schema(keys: tuple[str, ...]) -> dict[str, Any]:
    properties = {key: ROW_ID if key == "id" else NON_EMPTY_TEXT for key in keys}
    return {
        "type": "object",
        "properties": properties,
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": False,
        "description": f"Exactly one of: {', '.join(keys)}.",
    }


@extend_schema_field(identifier_schema(JOB_IDENTIFIER_FIELDS))
class JobIdentifierField(ParsedField):
    def to_internal_value(self, data: Any) -> dict[str, Any]:
        return parse_identifier(data, fields=JOB_IDENTIFIER_FIELDS, parameter="job_identifier")


@extend_schema_field(identifier_schema(CATALOG_IDENTIFIER_FIELDS))
class CatalogIdentifierField(ParsedField):
    """A status, type or reason named by id, name or alternative_code; errors name the field."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        return parse_identifier(data, fields=CATALOG_IDENTIFIER_FIELDS, parameter=self.field_name)


@extend_schema_field({"type": "boolean"})
class StrictBooleanField(serializers.BooleanField):
    """true or false, as JSON has them: DRF's own would take "yes", 1 or "on" as true."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            raise InvalidParameter(
                f"{self.field_name} must be true or false.", f"Send {self.field_name} as a boolean."
            )
        return data


# --- transitions: jobs/{id}/<transition> (ours) and jobs/all_scopes/<transition> (CRM.COM's) ---


def _reason_field() -> CatalogIdentifierField:
    return CatalogIdentifierField(
        required=False, help_text="default: the type's cancellation reason, if any"
    )


class TransitionInput(TokenBody):
    """The body of POST jobs/{id}/<transition>: the job is the path's."""

    # Not in the document (the path names the job), but a client that sends it anyway is taken
    # when it names the path's job, and refused when it names another (jobs.api.transitions).
    tolerated = ("job_identifier",)
    status_identifier = CatalogIdentifierField(required=False)
    fields_set = FieldsSetField(required=False)


class ByIdentifier(serializers.Serializer):
    """CRM.COM's methods name the job in the body."""

    job_identifier = JobIdentifierField()


class SubmitInput(TransitionInput):
    """The body of POST jobs/{id}/submit."""


class SubmitByIdentifierInput(ByIdentifier, SubmitInput):
    """The body of POST jobs/all_scopes/submit."""


class StartProgressInput(TransitionInput):
    """The body of POST jobs/{id}/start_progress."""


class StartProgressByIdentifierInput(ByIdentifier, StartProgressInput):
    """The body of POST jobs/all_scopes/start_progress."""


class CompleteInput(TransitionInput):
    """The body of POST jobs/{id}/complete."""


class CompleteByIdentifierInput(ByIdentifier, CompleteInput):
    """The body of POST jobs/all_scopes/complete."""


class CancelInput(TransitionInput):
    """The body of POST jobs/{id}/cancel."""

    cancellation_reason_identifier = _reason_field()


class CancelByIdentifierInput(ByIdentifier, CancelInput):
    """The body of POST jobs/all_scopes/cancel."""


# --- background runs: POST transition_runs ------------------------------------------------------

FILTER_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        name: {"type": "string", "enum": LifeCycleState.values}
        if name == "life_cycle_state"
        else {
            **{"id": ROW_ID, "bool": {"type": "boolean"}}.get(kind, NON_EMPTY_TEXT),
            "description": text,
        }
        for name, (kind, text) in FILTER_DESCRIPTIONS.items()
    },
    "description": "The jobs to move, in the names of GET jobs; every job when left out. Frozen "
    "when queued: jobs created afterwards are not part of the run.",
}
JSON_TYPES = {
    "integer": (int, "a whole number"),
    "string": (str, "text"),
    "boolean": (bool, "true or false"),
}


@extend_schema_field(FILTER_SCHEMA)
class RunFilterField(serializers.Field):
    """An object of names and values, each of the JSON type the schema gives it; the names and
    the values themselves are checked by `GET jobs`' own filter (`jobs.filters.filtered_jobs`)."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise InvalidParameter("filter must be an object.", "Send filter as {name: value}.")
        for name, value in data.items():
            schema = FILTER_SCHEMA["properties"].get(name, {})
            kind, words = JSON_TYPES.get(schema.get("type"), (object, ""))
            if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
                raise InvalidParameter(
                    f"filter {str(name)[:100]} must be {words or 'a value'}.",
                    "Correct the filter's value.",
                )
        return data


class RunInput(TokenBody):
    filter = RunFilterField(required=False)
    status_identifier = CatalogIdentifierField(
        required=False, help_text="default: each job type's default status"
    )
    dry_run = StrictBooleanField(
        required=False,
        default=False,
        help_text="true: queue nothing, and answer what the run would do now (how many jobs "
        "would move, how many would be skipped and why)",
    )


def _transition_field(name: str) -> serializers.ChoiceField:
    return serializers.ChoiceField(choices=[name])


class SubmitRunInput(RunInput):
    transition = _transition_field(SUBMIT.name)


class StartProgressRunInput(RunInput):
    transition = _transition_field(START_PROGRESS.name)


class CompleteRunInput(RunInput):
    transition = _transition_field(COMPLETE.name)


class CancelRunInput(RunInput):
    transition = _transition_field(CANCEL.name)
    cancellation_reason_identifier = _reason_field()


RUN_INPUTS: dict[str, type[RunInput]] = {
    SUBMIT.name: SubmitRunInput,
    START_PROGRESS.name: StartProgressRunInput,
    COMPLETE.name: CompleteRunInput,
    CANCEL.name: CancelRunInput,
}


class StopInput(TokenBody):
    """The body of POST transition_runs/{id}/stop: nothing but, perhaps, the token."""
