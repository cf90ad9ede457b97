import json
import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from jobs.api import inputs
from jobs.api.inputs import RUN_INPUTS
from jobs.api.transitions import TransitionEndpoints
from jobs.models import Job, format_job_number
from jobs.transitions import TRANSITIONS
from tests.helpers import openapi_schema

pytestmark = pytest.mark.django_db


def test_the_openapi_schema_validates_without_warnings(tmp_path):
    # --fail-on-warn: a field drf-spectacular cannot type is a failure, not a guess.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yml"))


def test_the_schema_documents_the_crm_method_its_errors_and_both_auth_schemes():
    document = openapi_schema()
    operation = document["paths"]["/crmapi/rest/v2/jobs/all_scopes/start_progress"]["post"]
    documented = " ".join(r["description"] for r in operation["responses"].values())
    for code in (
        "MANDATORY_PARAMETER_MISSING",
        "INVALID_IDENTIFIER",
        "JOB_NOT_FOUND",
        "STATUS_NOT_ALLOWED",
        "NO_DEFAULT_STATUS",
        "JOB_STATE_CONFLICT",
        "AUTHENTICATION_FAILED",
        "PERMISSION_DENIED",
        "INTERNAL_ERROR",
    ):
        assert code in documented
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert "cookieAuth" in schemes


def test_identifier_objects_take_exactly_one_key():
    body = openapi_schema()["components"]["schemas"]["StartProgressByIdentifierInputRequest"]
    identifier = body["properties"]["job_identifier"]
    assert (identifier["minProperties"], identifier["maxProperties"]) == (1, 1)
    assert set(identifier["properties"]) == {"id", "number"}


def test_the_schema_and_docs_are_served(client):
    assert client.get("/crmapi/rest/v2/schema").status_code == 200
    docs = client.get("/crmapi/rest/v2/docs")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()


def test_every_transition_and_the_statuses_look_up_are_documented_with_their_codes():
    from jobs.transitions import TRANSITIONS

    paths = openapi_schema()["paths"]
    for name, declared in TRANSITIONS.items():
        for path in (
            f"/crmapi/rest/v2/jobs/all_scopes/{name}",
            f"/crmapi/rest/v2/jobs/{{id}}/{name}",
        ):
            operation = paths[path]["post"]
            documented = " ".join(r["description"] for r in operation["responses"].values())
            for parameter in declared.parameters:
                assert parameter.not_found.code in documented
            assert "JOB_STATE_CONFLICT" in documented
    cancel = openapi_schema()["components"]["schemas"]["CancelByIdentifierInputRequest"]
    assert "cancellation_reason_identifier" in cancel["properties"]
    look_up = paths["/crmapi/rest/v2/jobs/configuration/statuses/list"]["get"]
    assert {p["name"] for p in look_up["parameters"]} == {"job_type_identifier", "life_cycle_state"}
    documented = " ".join(r["description"] for r in look_up["responses"].values())
    assert "JOB_TYPE_NOT_FOUND" in documented


def _body_fields(schema: dict, schemas: dict) -> set[str]:
    if "$ref" in schema:
        return _body_fields(schemas[schema["$ref"].rsplit("/", 1)[-1]], schemas)
    found = set(schema.get("properties", {}))
    for variant in schema.get("oneOf", []):
        found |= _body_fields(variant, schemas)
    return found


def test_the_document_keeps_every_operation_parameter_and_body_field_of_the_last_release():
    # What 67098eb documented (tests/data): generated clients built on it keep working.
    before = json.loads(
        (Path(__file__).parent / "data/openapi-operations-67098eb.json").read_text()
    )
    document = openapi_schema()
    schemas = document["components"]["schemas"]
    for operation, was in before.items():
        method, path = operation.split(" ", 1)
        now = document["paths"][path][method.lower()]
        parameters = {f"{p['in']}:{p['name']}" for p in now.get("parameters", [])}
        assert set(was["parameters"]) <= parameters, operation
        body = set()
        for content in now.get("requestBody", {}).get("content", {}).values():
            body = _body_fields(content["schema"], schemas)
        assert set(was["body"]) <= body, operation
        assert set(was["responses"]) <= set(now["responses"]), operation


def test_the_document_names_the_product():
    assert openapi_schema()["info"]["title"] == (
        "jobs: field jobs through their life cycle, CRM.COM style"
    )


def test_every_declared_transition_has_its_endpoints_and_bodies():
    # A fifth transition is declared once, but its endpoints are written out (docs/architecture.md)
    paths = openapi_schema()["paths"]
    for name in TRANSITIONS:
        words = "".join(part.capitalize() for part in name.split("_"))
        assert f"/crmapi/rest/v2/jobs/all_scopes/{name}" in paths, name
        assert f"/crmapi/rest/v2/jobs/{{id}}/{name}" in paths, name
        assert hasattr(TransitionEndpoints, name)
        assert hasattr(TransitionEndpoints, f"{name}_by_identifier")
        for body in (f"{words}Input", f"{words}ByIdentifierInput"):
            assert issubclass(getattr(inputs, body), inputs.TransitionInput), body
        assert RUN_INPUTS[name].__name__ == f"{words}RunInput"
    for declared in TRANSITIONS.values():
        for parameter in declared.parameters:
            words = "".join(part.capitalize() for part in declared.name.split("_"))
            assert parameter.api_name in getattr(inputs, f"{words}Input")().fields
            assert parameter.api_name in RUN_INPUTS[declared.name]().fields


def request_examples(document: dict):
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            for name, example in body.get("examples", {}).items():
                yield method, path, name, example["value"]


def test_every_request_example_in_the_document_works_as_written_on_the_demo_data(api, token_for):
    from django.contrib.auth import get_user_model
    from django.db import transaction

    call_command("load_demo_data", stdout=StringIO())
    api.credentials(
        HTTP_AUTHORIZATION=f"Bearer {token_for(get_user_model().objects.get(username='admin'))}"
    )
    # The examples name jobs as a fresh demo numbers them (JB00001 its first); here the ids may
    # start further on (PostgreSQL does not rewind its sequences between tests).
    offset = Job.objects.order_by("pk").first().pk - 1

    def on_this_demo(body):
        text = re.sub(
            r"JB(\d{5})", lambda m: format_job_number(int(m.group(1)) + offset), json.dumps(body)
        )
        return json.loads(text)

    tried = []
    for method, path, name, body in request_examples(openapi_schema()):
        # A path's job is the one the README's walkthrough starts: pending in the demo.
        url = path.replace("{id}", str(3 + offset))
        body = on_this_demo(body)
        with transaction.atomic():  # each example alone on the demo data, as a reader tries it
            response = getattr(api, method)(url, body, format="json")
            transaction.set_rollback(True)
        assert response.status_code in (200, 201), (method, path, name, response.json())
        tried.append((method, path))
    assert ("patch", "/crmapi/rest/v2/jobs/{id}") in tried
    assert ("post", "/crmapi/rest/v2/jobs/generic_purpose/update") in tried
