"""OpenAPI pieces for the envelope and the error codes each endpoint can answer with."""

from __future__ import annotations

from collections import defaultdict

from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers

from jobs.api.envelope import ERROR_CODES, HTTP_STATUS
from jobs.identifiers import MAX_ID

# A row's id, as the id columns hold it; and one in a path.
ROW_ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
ID_IN_PATH = OpenApiParameter("id", ROW_ID, OpenApiParameter.PATH)

# Text as Django accepts it: forms and DRF refuse NUL characters, and PostgreSQL cannot store them.
NON_EMPTY_TEXT = {"type": "string", "minLength": 1, "pattern": "^[^\\u0000]+$"}


@extend_schema_field(NON_EMPTY_TEXT)
class TextField(serializers.CharField):
    """A string parameter, documented with what Django refuses in it. Strict: DRF's CharField
    would quietly turn a number into text, which the schema does not allow."""

    def __init__(self, **kwargs: object) -> None:
        # Taken as typed, as the schema describes it: tokens and passwords are not trimmed.
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field({"type": "string", "pattern": "^[^\\u0000]*$"})
class OptionalText(serializers.CharField):
    """Text that may be empty, documented with the NUL character Django refuses in it (the
    fuzzer found an organisation with NUL called malformed while the schema allowed it)."""


class StatusSerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=["OK", *ERROR_CODES])
    message = serializers.CharField(help_text="one line; empty when OK")
    description = serializers.CharField(help_text="what to change; empty when OK")


class ErrorEnvelopeSerializer(serializers.Serializer):
    status = StatusSerializer()
    data = serializers.JSONField(allow_null=True, help_text="always null for an error")


def enveloped(data: serializers.BaseSerializer | serializers.Field, name: str):
    return inline_serializer(name=name, fields={"status": StatusSerializer(), "data": data})


# Every endpoint under the root may answer with these.
ALWAYS = ("INTERNAL_ERROR",)


def errors(*codes: str) -> dict[int, OpenApiResponse]:
    by_status: dict[int, list[str]] = defaultdict(list)
    for code in (*codes, *ALWAYS):
        by_status[HTTP_STATUS[code]].append(code)
    return {
        status: OpenApiResponse(
            ErrorEnvelopeSerializer, description="status.code is one of: " + ", ".join(names)
        )
        for status, names in sorted(by_status.items())
    }


def paths_without_trailing_slash(result: dict, **kwargs: object) -> dict:
    """Document CRM.COM's spelling (`jobs/all_scopes/start_progress`); a final slash works too."""
    result["paths"] = {path.rstrip("/"): item for path, item in result["paths"].items()}
    return result


def one_of_bodies_required(result: dict, **kwargs: object) -> dict:
    """A body that is one of several shapes told apart by a field (POST transition_runs, by
    `transition`) cannot be left out: drf-spectacular only marks a body required when its own
    serializer has a required field, which a polymorphic one has not."""
    schemas = result.get("components", {}).get("schemas", {})
    for item in result["paths"].values():
        for operation in item.values():
            body = operation.get("requestBody") if isinstance(operation, dict) else None
            if not body:
                continue
            for content in body.get("content", {}).values():
                name = content.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1]
                if "oneOf" in schemas.get(name, {}):
                    body["required"] = True
    return result


def closed_bodies(result: dict, **kwargs: object) -> dict:
    """Every request body refuses a name it does not declare (jobs.api.inputs); say so, so that
    generated clients and schema-driven fuzzers agree with the server."""
    schemas = result.get("components", {}).get("schemas", {})
    bodies: list[str] = []
    for item in result["paths"].values():
        for operation in item.values():
            body = operation.get("requestBody") if isinstance(operation, dict) else None
            for content in (body or {}).get("content", {}).values():
                bodies.append(content.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1])
    while bodies:
        schema = schemas.get(bodies.pop(), {})
        # Its variants, and the objects nested in it (a create's assigned_to), are bodies too.
        nested = [
            *schema.get("oneOf", []),
            *(
                ref
                for field in schema.get("properties", {}).values()
                for ref in [field, *field.get("allOf", []), *field.get("oneOf", [])]
            ),
        ]
        bodies.extend(v["$ref"].rsplit("/", 1)[-1] for v in nested if "$ref" in v)
        if schema.get("type") == "object":
            schema["additionalProperties"] = False
    return result
