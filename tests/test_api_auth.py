"""Logging in, releasing a token, and what an unusable token gets."""

import pytest
from rest_framework_simplejwt.tokens import SlidingToken

from tests.factories import JobFactory, UserFactory
from tests.helpers import JOBS, LOGIN, RELEASE, code_of

pytestmark = pytest.mark.django_db


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


def test_the_body_token_works_on_the_rest_action_too(api, dispatcher):
    job = JobFactory()
    token = login(api).json()["data"]["token"]
    response = api.post(f"{JOBS}/{job.pk}/start_progress", {"token": token}, format="json")
    assert code_of(response) == (200, "OK")


def test_a_token_whose_user_is_gone_says_so_and_a_released_one_says_it_was_released(api):
    kept, gone = UserFactory(permissions=["view_job"]), UserFactory(permissions=["view_job"])
    released = SlidingToken.for_user(kept)
    released.blacklist()
    orphan = str(SlidingToken.for_user(gone))
    gone.delete()

    for token, message in (
        (orphan, "The token's user is inactive or no longer exists."),
        (str(released), "The token is invalid, expired or released."),
    ):
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        response = api.get(JOBS)
        assert code_of(response) == (401, "AUTHENTICATION_FAILED")
        assert response.json()["status"]["message"] == message
