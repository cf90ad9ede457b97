"""Adversarial input: schemathesis against our own OpenAPI schema, and Hypothesis against the two
parsers every request goes through (fields_set and identifier objects)."""

import json

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.wsgi import application
from jobs.api.serializers import allowed_names, parse_fields_set
from jobs.exceptions import InvalidIdentifier, InvalidParameter
from jobs.identifiers import JOB_IDENTIFIER_FIELDS, STATUS_IDENTIFIER_FIELDS, parse_identifier
from tests.factories import JobFactory, JobStatusFactory, JobTypeFactory

schema = schemathesis.openapi.from_wsgi("/crmapi/rest/v2/schema?format=json", application)

# Bounded so CI stays quick; raise it locally to dig deeper (SCHEMATHESIS_EXAMPLES=500 …).
EXAMPLES = int(__import__("os").environ.get("SCHEMATHESIS_EXAMPLES", "40"))


@pytest.fixture
def same_connection_across_requests():
    """Requests go straight to the WSGI app, whose end-of-request hook would close the database
    connection the test's transaction lives on; Django's test client unhooks it the same way."""
    hooks = (request_started, request_finished)
    for hook in hooks:
        hook.disconnect(close_old_connections)
    yield
    for hook in hooks:
        hook.connect(close_old_connections)


@pytest.fixture
def bearer(db, dispatcher, token_for, same_connection_across_requests):
    # Something real to find: jobs in several states, a type without default, a shared status.
    job_type = JobTypeFactory()
    job_type.allowed_statuses.add(JobStatusFactory(alternative_code="ONSITE"))
    JobFactory.create_batch(3, type=job_type)
    JobFactory(type=JobTypeFactory(without_default=True))
    JobFactory(life_cycle_state="COMPLETED")
    return {"Authorization": f"Bearer {token_for(dispatcher)}"}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_the_api_never_fails_and_always_answers_as_documented(case, bearer):
    # Our contract answers some well-formed requests with 400 (STATUS_NOT_FOUND for a status that
    # does not exist, say), which schemathesis's own "valid data is accepted" check cannot know;
    # the check below keeps its point: a request the schema allows is never called malformed.
    response = case.call_and_validate(
        headers=bearer, excluded_checks=[schemathesis.checks.positive_data_acceptance]
    )
    body = response.json()
    assert set(body) >= {"status", "data"}
    assert set(body["status"]) == {"code", "message", "description"}
    assert response.status_code < 500, body
    if case.meta is not None and case.meta.generation.mode.is_positive:
        assert body["status"]["code"] not in MALFORMED, (case.body, case.query, body)


MALFORMED = {"MANDATORY_PARAMETER_MISSING", "INVALID_IDENTIFIER", "INVALID_PARAMETER"}


# --- the parsers -----------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)
field_names = st.sampled_from(allowed_names()) | st.text(max_size=30)


@given(json_values | st.lists(field_names, max_size=6) | st.lists(field_names).map(",".join))
def test_any_fields_set_is_a_selection_or_invalid_parameter(raw):
    selection, refusal = attempt(parse_fields_set, raw, refused_with=InvalidParameter)
    if refusal is not None:
        assert refusal.description
    else:
        assert selection is None or (isinstance(selection, dict) and selection)
        json.dumps(selection)


def attempt(parse, *args, refused_with, **kwargs):
    """(result, None), or (None, the refusal): any other exception fails the test."""
    try:
        return parse(*args, **kwargs), None
    except refused_with as refusal:
        return None, refusal


@given(
    st.dictionaries(
        st.sampled_from(["id", "number", "name", "alternative_code", "x"]), json_values, max_size=3
    )
    | json_values,
    st.sampled_from([JOB_IDENTIFIER_FIELDS, STATUS_IDENTIFIER_FIELDS]),
)
def test_any_identifier_is_one_lookup_or_invalid_identifier(raw, fields):
    lookup, refusal = attempt(
        parse_identifier,
        raw,
        fields=fields,
        parameter="job_identifier",
        refused_with=InvalidIdentifier,
    )
    if refusal is not None:
        assert refusal.description
        return
    ((key, value),) = lookup.items()
    assert key in fields
    assert isinstance(value, int) if key == "id" else isinstance(value, str) and value
