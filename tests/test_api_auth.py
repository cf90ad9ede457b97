"""Logging in, releasing a token, and what an unusable token gets."""

from datetime import timedelta

import jwt
import pytest
from django.utils import timezone
from rest_framework_simplejwt.tokens import SlidingToken

from tests.factories import JobFactory, UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/crmapi/rest/v2/authentication/token"
RELEASE = "/crmapi/rest/v2/authentication/token/release"
JOBS = "/crmapi/rest/v2/jobs"


def code_of(response) -> tuple[int, str]:
    return response.status_code, response.json()["status"]["code"]


def login(api, username="dispatcher", password="pw", **extra):
    return api.post(LOGIN, {"username": username, "password": password, **extra}, format="json")


def test_logging_in_gives_a_token_that_lasts_two_hours(api, dispatcher):
    response = login(api, organisation="ACME")  # organisation is accepted and ignored

    assert code_of(response) == (200, "OK")
    token = SlidingToken(response.json()["data"]["token"])
    assert token["exp"] - token["iat"] == 2 * 60 * 60


def test_the_token_opens_the_api(api, dispatcher):
    token = login(api).json()["data"]["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert code_of(api.get(JOBS)) == (200, "OK")


def test_a_wrong_password_is_authentication_failed(api, dispatcher):
    assert code_of(login(api, password="wrong")) == (401, "AUTHENTICATION_FAILED")


def test_an_inactive_user_cannot_log_in(api):
    UserFactory(username="gone", is_active=False)
    assert code_of(login(api, username="gone")) == (401, "AUTHENTICATION_FAILED")


@pytest.mark.parametrize("body", [{}, {"username": "dispatcher"}, {"password": "pw"}])
def test_a_missing_username_or_password_is_mandatory_parameter_missing(api, dispatcher, body):
    response = api.post(LOGIN, body, format="json")
    assert code_of(response) == (400, "MANDATORY_PARAMETER_MISSING")


def test_login_attempts_are_throttled_per_username_and_address(api, dispatcher, settings):
    for _ in range(10):
        login(api, password="guess")

    throttled = login(api)
    assert code_of(throttled) == (429, "THROTTLED")
    assert int(throttled["Retry-After"]) > 0
    # another username from the same address is counted apart
    UserFactory(username="other")
    assert code_of(login(api, username="other")) == (200, "OK")
    # and the same username from another address too
    assert code_of(
        api.post(
            LOGIN,
            {"username": "dispatcher", "password": "pw"},
            format="json",
            REMOTE_ADDR="10.9.8.7",
        )
    ) == (200, "OK")


def test_a_released_token_stops_working_at_once(api, dispatcher):
    token = login(api).json()["data"]["token"]

    assert code_of(api.post(RELEASE, {"token": token}, format="json")) == (200, "OK")

    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert code_of(api.get(JOBS)) == (401, "AUTHENTICATION_FAILED")
    assert code_of(api.post(RELEASE, {"token": token}, format="json")) == (
        401,
        "AUTHENTICATION_FAILED",
    )


def test_releasing_nothing_is_mandatory_parameter_missing(api):
    assert code_of(api.post(RELEASE, {}, format="json")) == (400, "MANDATORY_PARAMETER_MISSING")


def test_an_expired_token_is_authentication_failed(api, dispatcher):
    token = SlidingToken.for_user(dispatcher)
    token.set_exp(from_time=timezone.now() - timedelta(hours=3), lifetime=timedelta(hours=2))
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert code_of(api.get(JOBS)) == (401, "AUTHENTICATION_FAILED")


def test_a_token_signed_with_another_key_is_authentication_failed(api, dispatcher):
    payload = dict(SlidingToken.for_user(dispatcher).payload)
    forged = jwt.encode(
        payload, "somebody-elses-signing-key-of-sufficient-length", algorithm="HS256"
    )
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {forged}")
    assert code_of(api.get(JOBS)) == (401, "AUTHENTICATION_FAILED")


def test_a_malformed_bearer_header_is_authentication_failed(api):
    api.credentials(HTTP_AUTHORIZATION="Bearer two parts")
    assert code_of(api.get(JOBS)) == (401, "AUTHENTICATION_FAILED")


def test_the_body_token_works_on_the_rest_action_too(api, dispatcher):
    job = JobFactory()
    token = login(api).json()["data"]["token"]
    response = api.post(f"{JOBS}/{job.pk}/start_progress", {"token": token}, format="json")
    assert code_of(response) == (200, "OK")
