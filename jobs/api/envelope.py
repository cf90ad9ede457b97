"""CRM.COM's response envelope, made in one place for every answer under the API root.

Successful views return `Response(envelope(data))`; every exception, ours or DRF's or an
unexpected one, becomes an enveloped error in `exception_handler`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response
from rest_framework.views import set_rollback

from jobs.api.words import say
from jobs.contract import envelope
from jobs.exceptions import JobNotFound, JobsError, PermissionDenied, every_error
from jobs.metrics import access_refused
from jobs.observability import (
    DATABASE_UNAVAILABLE,
    RETRY_AFTER_SECONDS,
    name_prepared_statement_trouble,
)

logger = logging.getLogger(__name__)

# The HTTP status of every code (the README's table): the domain's, each declared with its error,
# then the door's own. NOT_FOUND, METHOD_NOT_ALLOWED, NOT_ACCEPTABLE, REQUEST_TOO_LARGE and
# SERVICE_UNAVAILABLE are ours, for unknown routes and methods under the root, an Accept header
# that rules JSON out, oversized bodies and a database that cannot be reached.
HTTP_STATUS = {
    "OK": 200,
    **{error.code: error.http_status for error in every_error() if error is not JobsError},
    "AUTHENTICATION_FAILED": 401,
    "THROTTLED": 429,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "NOT_ACCEPTABLE": 406,
    "REQUEST_TOO_LARGE": 413,
    "SERVICE_UNAVAILABLE": 503,
    "INTERNAL_ERROR": 500,
}
ERROR_CODES = [code for code in HTTP_STATUS if code != "OK"]
__all__ = ["ERROR_CODES", "HTTP_STATUS", "envelope", "error_response", "exception_handler"]


def error_response(
    code: str, message: str, description: str = "", headers: dict[str, str] | None = None
) -> Response:
    return Response(
        envelope(None, code, message, description), status=HTTP_STATUS[code], headers=headers
    )


def _first_message(detail: Any) -> str:
    """The first human message in DRF's nested error detail, with the field it is about."""
    if isinstance(detail, dict):
        for field, inner in detail.items():
            message = _first_message(inner)
            return message if field in ("non_field_errors", "detail") else f"{field}: {message}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def _asked_for(context: dict[str, Any]) -> str:
    """The job a refused request named, as it named it (an id in the path, a job_identifier in
    the query or the body), or the path: never the job's content."""
    request, view = context.get("request"), context.get("view")
    kwargs = getattr(view, "kwargs", None) or {}
    if "pk" in kwargs:
        return f"job {kwargs['pk']}"
    if request is None:
        return ""
    if request.method in SAFE_METHODS:
        # A read's body is never parsed: one it cannot parse must not turn a 404 into a 500.
        named = request.query_params.get("job_identifier")
        return f"job {named}" if named else request.path
    data = request.data  # a refusal of the service comes after the body was parsed
    if isinstance(data, dict) and isinstance(data.get("job_identifier"), dict):
        return f"job {data['job_identifier']}"
    return request.path


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    set_rollback()
    if isinstance(exc, JobNotFound | PermissionDenied):
        user = getattr(context.get("request"), "user", None)
        access_refused("api", exc.code, user, _asked_for(context))
    if isinstance(exc, JobsError):
        return error_response(exc.code, *say(exc))
    if isinstance(exc, drf.NotAuthenticated):
        return error_response(
            "AUTHENTICATION_FAILED",
            "No token was given.",
            "Log in with POST authentication/token, then send the token in the body as "
            "'token' or as 'Authorization: Bearer <token>'.",
            _auth_header(exc),
        )
    if isinstance(exc, drf.AuthenticationFailed):
        return error_response(
            "AUTHENTICATION_FAILED",
            _auth_message(exc),
            "Log in again with POST authentication/token.",
            _auth_header(exc),
        )
    if isinstance(exc, drf.PermissionDenied) and str(exc.detail).startswith("CSRF Failed"):
        # A browser's session reached the API without the page's CSRF token.
        return error_response(
            "PERMISSION_DENIED",
            "The CSRF token is missing or wrong.",
            "A logged-in browser sends its CSRF token in the X-CSRFToken header; an API client "
            "sends its API token (Authorization: Bearer) and no session cookie.",
        )
    if isinstance(exc, drf.PermissionDenied | DjangoPermissionDenied):
        return error_response("PERMISSION_DENIED", "You may not do this.", "Ask an administrator.")
    if isinstance(exc, drf.NotAcceptable):
        return error_response(
            "NOT_ACCEPTABLE",
            "The API answers only in JSON.",
            "Send Accept: application/json (or */*), or leave Accept out.",
        )
    if isinstance(exc, drf.Throttled):
        wait = int(exc.wait or 1)
        return error_response(
            "THROTTLED",
            "Too many attempts.",
            f"Wait {wait} seconds before trying again.",
            {"Retry-After": str(wait)},
        )
    if isinstance(exc, drf.ParseError):
        return error_response(
            "INVALID_PARAMETER", "The body is not valid JSON.", "Send a JSON object."
        )
    if isinstance(exc, drf.UnsupportedMediaType):
        content_type = context["request"].content_type.split(";")[0].strip()[:100]
        return error_response(
            "INVALID_PARAMETER",
            f"The body must be JSON, not {content_type or 'untyped'}.",
            "Send the body as JSON with 'Content-Type: application/json'.",
        )
    if isinstance(exc, RequestDataTooBig):
        discard_unread_body(context["request"])
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        logger.warning("Refused a body over %d bytes", limit)
        return error_response(
            "REQUEST_TOO_LARGE",
            f"The body is larger than {limit:,} bytes.",
            "Nothing was changed. Send a smaller body; no request of this API needs one this big.",
        )
    if isinstance(exc, drf.ValidationError):
        missing = _missing_parameter(exc)
        if missing:
            return error_response(
                "MANDATORY_PARAMETER_MISSING", f"{missing} is missing.", f"Send {missing}."
            )
        return error_response(
            "INVALID_PARAMETER", _first_message(exc.detail), "Correct the parameter and retry."
        )
    if isinstance(exc, DATABASE_UNAVAILABLE):
        logger.warning("database unavailable", extra={"error": type(exc).__name__})
        return error_response(
            "SERVICE_UNAVAILABLE",
            "The database cannot be reached right now.",
            f"Nothing was changed. Try again in {RETRY_AFTER_SECONDS} seconds.",
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, drf.NotFound | Http404):
        return error_response(
            "NOT_FOUND", "There is nothing at this address.", "See GET schema for the endpoints."
        )
    if isinstance(exc, drf.MethodNotAllowed):
        return error_response(
            "METHOD_NOT_ALLOWED",
            f"Method {context['request'].method} is not allowed here.",
            "See GET schema for the methods of each endpoint.",
        )
    name_prepared_statement_trouble(exc)
    logger.exception("Unexpected error in %s", context.get("view").__class__.__name__)
    return error_response(
        "INTERNAL_ERROR",
        "Something went wrong on our side.",
        "Nothing was changed. Try again; if it keeps failing, tell the operators.",
    )


# Reading the rest of a refused body lets the client see our answer: a server that closes the
# connection with unread data makes the client's network stack report a reset instead. Beyond
# this much, the client is not worth waiting for.
DISCARD_AT_MOST = 64 * 2**20


def discard_unread_body(request: Any) -> None:
    stream = request._request
    remaining = min(int(request.META.get("CONTENT_LENGTH") or 0), DISCARD_AT_MOST)
    try:
        while remaining > 0:
            chunk = stream.read(min(remaining, 2**16))
            if not chunk:
                break
            remaining -= len(chunk)
    except OSError:
        pass  # the client went away: nothing to answer


def _missing_parameter(exc: drf.ValidationError) -> str | None:
    """The first body parameter DRF found absent (or empty), if any."""
    codes = exc.get_codes()
    if isinstance(codes, dict):
        for field, field_codes in codes.items():
            if isinstance(field_codes, list) and {"required", "blank"} & set(field_codes):
                return field
    return None


def _auth_header(exc: drf.APIException) -> dict[str, str] | None:
    header = getattr(exc, "auth_header", None)
    return {"WWW-Authenticate": header} if header else None


def _auth_message(exc: drf.AuthenticationFailed) -> str:
    # simplejwt's details are nested and name its internals; say it plainly.
    # simplejwt puts its own code in the detail: {"detail": …, "code": "user_not_found"}.
    code = str(exc.detail.get("code")) if isinstance(exc.detail, dict) else exc.get_codes()
    if code in ("user_inactive", "user_not_found"):
        return "The token's user is inactive or no longer exists."
    if code == "bad_authorization_header":
        return "The Authorization header must read 'Bearer <token>', with one token."
    if isinstance(exc.detail, dict) and "messages" in exc.detail:
        return "The token is invalid, expired or released."
    return _first_message(exc.detail)
