"""What a newcomer tripped on: the root without its slash, bodies of the wrong type, too large or
nested too deeply. Each answers in the envelope with the contract's code; nothing changes and
nothing lands in the log as a traceback."""

import http.client
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobs.api.parsers import MAX_JSON_DEPTH
from jobs.transitions import TRANSITIONS
from tests.factories import JobFactory
from tests.helpers import LOGIN, RELEASE, ROOT, by_identifier_url, code_of, in_path_url

pytestmark = pytest.mark.django_db

METHODS = ["get", "post", "put", "patch", "delete", "options"]
TEN_MB = 10 * 2**20


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "no-debug"])
@pytest.mark.parametrize("path", [ROOT, ROOT.rstrip("/")], ids=["slash", "no-slash"])
@pytest.mark.parametrize("method", METHODS)
def test_every_method_on_the_root_answers_not_found_in_the_envelope(
    api, settings, debug, path, method
):
    settings.DEBUG = debug
    response = getattr(api, method)(path, {}, format="json")
    assert response.status_code == 404
    assert response.json()["status"]["code"] == "NOT_FOUND"


def test_head_on_the_root_answers_404_too(client):
    assert client.head(ROOT.rstrip("/")).status_code == 404


def test_a_plain_text_body_is_refused_in_one_clear_sentence(as_dispatcher):
    response = as_dispatcher.post(
        by_identifier_url("start_progress"), "JB00001", content_type="text/plain"
    )
    status = response.json()["status"]
    assert (response.status_code, status["code"]) == (400, "INVALID_PARAMETER")
    assert status["message"] == "The body must be JSON, not text/plain."


def body_reading_paths(job) -> list[str]:
    """Every endpoint that reads a body: login, release, and each transition both ways."""
    return [
        LOGIN,
        RELEASE,
        *(by_identifier_url(name) for name in TRANSITIONS),
        *(in_path_url(job, name) for name in TRANSITIONS),
    ]


def test_a_body_over_the_limit_is_413_everywhere_and_changes_nothing(
    as_dispatcher, settings, unchanged, caplog
):
    settings.DEBUG = False
    job = JobFactory()
    unchanged()
    body = json.dumps({"job_identifier": {"number": job.number}, "padding": "x" * TEN_MB})
    for path in body_reading_paths(job):
        with caplog.at_level(logging.WARNING):
            response = as_dispatcher.post(path, body, content_type="application/json")
        assert (response.status_code, response.json()["status"]["code"]) == (
            413,
            "REQUEST_TOO_LARGE",
        ), path
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


@pytest.mark.parametrize("levels", [100_000, MAX_JSON_DEPTH + 1])
def test_a_body_nested_too_deeply_is_invalid_parameter_everywhere(
    as_dispatcher, unchanged, caplog, levels
):
    job = JobFactory()
    unchanged()
    body = "[" * levels + "]" * levels
    for path in body_reading_paths(job):
        response = as_dispatcher.post(path, body, content_type="application/json")
        status = response.json()["status"]
        assert (response.status_code, status["code"]) == (400, "INVALID_PARAMETER"), path
        assert "nested" in status["message"]
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


def test_a_body_within_the_depth_limit_is_read_as_usual(as_dispatcher, unchanged):
    job = JobFactory()
    unchanged()
    nested: object = "x"
    for _ in range(MAX_JSON_DEPTH - 2):
        nested = [nested]
    response = as_dispatcher.post(
        by_identifier_url("start_progress"),
        {"job_identifier": {"number": job.number}, "note": nested},
        format="json",
    )
    # Read whole, so its unknown field is named, not the body called too deep.
    assert code_of(response) == (400, "INVALID_PARAMETER")
    assert response.json()["status"]["message"] == "'note' is not a parameter of this request."


# --- the same against gunicorn, as the issue was found --------------------------------------


@pytest.fixture
def gunicorn(tmp_path):
    """gunicorn with DEBUG=0 on a migrated scratch database; yields (port, the server's log)."""
    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DEBUG": "0",
        "SECRET_KEY": "test-only-gunicorn-key",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], env=env, cwd=root, check=True)
    log = tmp_path / "gunicorn.log"
    with log.open("w") as sink:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi",
                "--bind",
                "127.0.0.1:0",
                "--workers",
                "1",
            ],
            env=env,
            cwd=root,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            port = None
            for _ in range(100):
                text = log.read_text()
                if "Listening at: http://127.0.0.1:" in text:
                    port = int(text.split("Listening at: http://127.0.0.1:")[1].split(" ")[0])
                    break
                time.sleep(0.1)
            assert port, log.read_text()
            yield port, log
        finally:
            server.terminate()
            server.wait(timeout=10)


def post_raw(port: int, path: str, body: bytes) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    answer = response.status, json.loads(response.read())
    connection.close()
    return answer


def test_under_gunicorn_a_huge_or_deep_body_is_answered_not_reset(gunicorn):
    port, log = gunicorn
    path = by_identifier_url("start_progress")

    status, body = post_raw(port, path, b'{"padding": "' + b"x" * TEN_MB + b'"}')
    assert (status, body["status"]["code"]) == (413, "REQUEST_TOO_LARGE")

    status, body = post_raw(port, path, b"[" * 100_000 + b"]" * 100_000)
    assert (status, body["status"]["code"]) == (400, "INVALID_PARAMETER")

    for method in ("POST", "PUT", "DELETE"):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request(method, ROOT.rstrip("/"))
        response = connection.getresponse()
        assert (response.status, json.loads(response.read())["status"]["code"]) == (
            404,
            "NOT_FOUND",
        )
        connection.close()
    assert "Traceback" not in log.read_text()


# --- odd but real input: never a 500 ----------------------------------------------------------

GET_PATHS = [ROOT + "jobs", ROOT + "events", ROOT + "jobs/configuration/statuses/list"]
ODD_DIGITS = ["\u00b2", "\u0661\u0669\u0668", "\uff11\uff12"]  # ², Arabic-Indic, fullwidth


@pytest.mark.parametrize("accept", ["application/xml", "text/html"])
def test_an_accept_header_that_rules_json_out_is_406_in_the_envelope_everywhere(
    as_dispatcher, settings, accept, caplog
):
    settings.DEBUG = False
    job = JobFactory()
    for path in [*GET_PATHS, *body_reading_paths(job)]:
        method = as_dispatcher.get if path in GET_PATHS else as_dispatcher.post
        with caplog.at_level(logging.WARNING):
            response = method(path, {}, format="json", HTTP_ACCEPT=accept)
        assert (response.status_code, response.json()["status"]["code"]) == (
            406,
            "NOT_ACCEPTABLE",
        ), path
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


@pytest.mark.parametrize("digits", ODD_DIGITS)
def test_digits_other_than_ascii_are_no_identifier(as_dispatcher, unchanged, digits):
    job = JobFactory(number="JB00198")
    unchanged()
    for path in (by_identifier_url(name) for name in TRANSITIONS):
        for body in (
            {"job_identifier": {"id": digits}},
            {"job_identifier": {"id": job.pk}, "status_identifier": {"id": digits}},
        ):
            response = as_dispatcher.post(path, body, format="json")
            assert (response.status_code, response.json()["status"]["code"]) == (
                400,
                "INVALID_IDENTIFIER",
            ), (path, body)


@pytest.mark.parametrize("digits", ODD_DIGITS)
def test_digits_other_than_ascii_are_no_number_of_results_offset_or_type_id(as_dispatcher, digits):
    for path, params in (
        (ROOT + "jobs", {"number_of_results": digits}),
        (ROOT + "jobs", {"offset": digits}),
        (ROOT + "events", {"number_of_results": digits}),
    ):
        response = as_dispatcher.get(path, params)
        assert (response.status_code, response.json()["status"]["code"]) == (
            400,
            "INVALID_PARAMETER",
        ), (path, params)
    response = as_dispatcher.get(
        ROOT + "jobs/configuration/statuses/list", {"job_type_identifier": f"id={digits}"}
    )
    assert response.status_code == 400
    assert response.json()["status"]["code"] in {"INVALID_IDENTIFIER", "JOB_TYPE_NOT_FOUND"}


def test_an_admin_page_for_an_odd_id_is_not_a_500(client, dispatcher):
    client.force_login(dispatcher)
    assert client.get("/admin/jobs/job/²/change/", follow=True).status_code == 200


LONE_SURROGATE = '"\\ud800"'


@pytest.mark.parametrize(
    "field",
    [
        '"job_identifier": {"number": %s}',
        '"job_identifier": {"id": 1}, "status_identifier": {"name": %s}',
        '"job_identifier": {"id": 1}, "fields_set": %s',
        '"job_identifier": {"id": 1}, "token": %s',
    ],
)
def test_a_lone_surrogate_in_a_body_is_invalid_parameter_in_the_envelope(
    as_dispatcher, settings, field
):
    settings.DEBUG = False
    body = "{" + field % LONE_SURROGATE + "}"
    for name in TRANSITIONS:
        response = as_dispatcher.post(
            by_identifier_url(name), body, content_type="application/json"
        )
        assert (response.status_code, response.json()["status"]["code"]) == (
            400,
            "INVALID_PARAMETER",
        )


def test_a_lone_surrogate_in_a_login_is_invalid_parameter(api):
    body = '{"username": ' + LONE_SURROGATE + ', "password": "x"}'
    response = api.post(LOGIN, body, content_type="application/json")
    assert (response.status_code, response.json()["status"]["code"]) == (400, "INVALID_PARAMETER")


@pytest.mark.parametrize("path", [ROOT + "jobs", by_identifier_url("start_progress")])
def test_options_answers_the_allowed_methods_in_the_envelope(as_dispatcher, path):
    response = as_dispatcher.options(path)
    assert response.status_code == 200
    allowed = {m.strip() for m in response["Allow"].split(",")}
    assert set(response.json()["data"]["allowed_methods"]) == allowed
    assert "OPTIONS" in allowed


def test_a_browser_session_without_its_csrf_token_is_told_so(dispatcher):
    from rest_framework.test import APIClient

    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(dispatcher)
    response = browser.post(
        by_identifier_url("start_progress"), {"job_identifier": {"id": 1}}, format="json"
    )
    status = response.json()["status"]
    assert (response.status_code, status["code"]) == (403, "PERMISSION_DENIED")
    assert "CSRF token" in status["message"]


@pytest.mark.parametrize("key", ["id", "number"])
def test_a_job_identifier_naming_another_job_than_the_path_is_refused(
    as_dispatcher, unchanged, key
):
    job, other = JobFactory(), JobFactory()
    unchanged()
    for name in TRANSITIONS:
        response = as_dispatcher.post(
            in_path_url(job, name), {"job_identifier": {key: getattr(other, key)}}, format="json"
        )
        assert (response.status_code, response.json()["status"]["code"]) == (
            400,
            "INVALID_PARAMETER",
        ), name


def test_a_job_identifier_naming_the_paths_job_is_taken(as_dispatcher):
    job = JobFactory()
    response = as_dispatcher.post(
        in_path_url(job, "start_progress"),
        {"job_identifier": {"number": job.number}},
        format="json",
    )
    assert response.json()["data"]["life_cycle_state"] == "IN_PROGRESS"


def test_a_nul_character_in_an_identifier_is_named_as_such(as_dispatcher, unchanged):
    JobFactory()
    unchanged()
    response = as_dispatcher.post(
        by_identifier_url("start_progress"),
        {"job_identifier": {"number": "JB\x0000001"}},
        format="json",
    )
    assert code_of(response) == (400, "INVALID_IDENTIFIER")
    message = response.json()["status"]["message"]
    assert message == "job_identifier.number holds a NUL character, which no number can contain."


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer two tokens"])
def test_a_bearer_header_without_one_token_is_said_in_our_words(api, header):
    api.credentials(HTTP_AUTHORIZATION=header)
    response = api.get(ROOT + "jobs")
    assert code_of(response) == (401, "AUTHENTICATION_FAILED")
    assert response.json()["status"]["message"] == (
        "The Authorization header must read 'Bearer <token>', with one token."
    )


def test_an_unknown_fields_set_name_is_quoted_as_sent(as_dispatcher):
    response = as_dispatcher.get(ROOT + "jobs", {"fields_set": "id,status."})
    assert code_of(response) == (400, "INVALID_PARAMETER")
    assert response.json()["status"]["message"] == "fields_set names unknown fields: 'status.'."
