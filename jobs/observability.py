"""What operators see: one structured line per request carrying a request id (returned in the
X-Request-ID header and bound to every line logged while the request runs), 503 instead of 500
while the database cannot be reached, and the Prometheus endpoint for those allowed to read it."""

from __future__ import annotations

import ipaddress
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.functional import SimpleLazyObject

from jobs.contract import envelope
from jobs.metrics import exposition

logger = logging.getLogger("jobs.requests")

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's own request id is kept (a proxy or client may have set it) if it is plainly an id.
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
API_ROOT = "/crmapi/rest/v2"
# While the database restarts, a client that waits this long and retries gets through.
RETRY_AFTER_SECONDS = 2
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


def _request_as_path(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    """Django passes the request object to its log records; its text would carry the query
    string. The path is enough to find the request (with its id)."""
    request = event.get("request")
    if request is not None and not isinstance(request, str):
        event["request"] = getattr(request, "path", "?")
    return event


class SkipServiceUnavailable(logging.Filter):
    """Django logs every 5xx as an error; a 503 while the database is away is already one warning
    line of ours, and a restart would otherwise flood the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "status_code", None) != 503


def formatter(fmt: str = "json") -> logging.Formatter:
    """Every log record, ours and Django's, as one JSON line (or a readable one for `text`), with
    the request id and whatever a record's `extra` carries."""
    renderer = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.CallsiteParameterAdder(
                [structlog.processors.CallsiteParameter.PROCESS]
            ),
            structlog.stdlib.ExtraAdder(),
            _request_as_path,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )


def _user_id(request: HttpRequest) -> int | None:
    # DRF sets the user it authenticated on the request; an unread lazy session user is left
    # alone rather than queried just to be logged.
    user = request.__dict__.get("user")
    if user is None or isinstance(user, SimpleLazyObject):
        return None
    return getattr(user, "pk", None)


class RequestLogMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = given if _SAFE_REQUEST_ID.match(given) else uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            # The path only: a query string is the client's to keep out of our logs.
            logger.log(
                logging.DEBUG if request.path.startswith("/health/") else logging.INFO,
                "request",
                extra={
                    "method": request.method,
                    "path": request.path[:200],
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "user_id": _user_id(request),
                },
            )
            return response
        finally:
            structlog.contextvars.clear_contextvars()


def database_unavailable_response(request: HttpRequest) -> HttpResponse:
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if request.path.startswith(API_ROOT):
        return JsonResponse(
            envelope(
                None,
                "SERVICE_UNAVAILABLE",
                "The database cannot be reached right now.",
                f"Nothing was changed. Try again in {RETRY_AFTER_SECONDS} seconds.",
            ),
            status=503,
            headers=headers,
        )
    return HttpResponse(
        "The database cannot be reached right now; try again shortly.",
        status=503,
        content_type="text/plain",
        headers=headers,
    )


# PgBouncer in transaction mode before 1.21 hands a connection's prepared statements to other
# server connections, where they do not exist or already exist: PostgreSQL's SQLSTATEs for both.
PREPARED_STATEMENT_STATES = frozenset({"26000", "42P05"})
_prepared_statements_named = False


def name_prepared_statement_trouble(exception: BaseException) -> None:
    """Say, once per process, what to set when the database lost track of prepared statements:
    without it the log showed an error about a statement name nobody wrote."""
    global _prepared_statements_named
    cause = exception.__cause__ or exception
    if (
        _prepared_statements_named
        or getattr(cause, "sqlstate", None) not in PREPARED_STATEMENT_STATES
    ):
        return
    _prepared_statements_named = True
    logger.error(
        "The database does not know this process's prepared statements: behind PgBouncer in "
        "transaction mode before 1.21, set DATABASE_PREPARED_STATEMENTS=none (or run PgBouncer "
        "1.21 or later with max_prepared_statements); see docs/deploy.md",
        extra={
            "sqlstate": cause.sqlstate,
            "setting": "DATABASE_PREPARED_STATEMENTS",
            "value": settings.DATABASE_PREPARED_STATEMENTS,
        },
    )


class DatabaseUnavailableMiddleware:
    """A request that finds the database gone (restarting, failing over) answers 503 with
    Retry-After, not 500; Django reconnects by itself on a later request (conn_health_checks)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        name_prepared_statement_trouble(exception)
        if isinstance(exception, DATABASE_UNAVAILABLE):
            logger.warning("database unavailable", extra={"error": type(exception).__name__})
            return database_unavailable_response(request)
        return None


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 400 (a Host header not in ALLOWED_HOSTS, say): the envelope under the API root."""
    if request.path.startswith(API_ROOT):
        return JsonResponse(
            envelope(
                None,
                "INVALID_PARAMETER",
                "The request was refused before it reached the API.",
                "Check the Host header: it must name this service.",
            ),
            status=400,
        )
    return HttpResponse("Bad Request (400)", status=400, content_type="text/plain")


def _allowed(address: str) -> bool:
    try:
        client = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(
        client in ipaddress.ip_network(network, strict=False)
        for network in settings.METRICS_ALLOWED_NETWORKS
    )


def metrics(request: HttpRequest) -> Any:
    """Prometheus's page, only with METRICS_ENABLED and only to the allowed networks: to anyone
    else there is nothing here."""
    if not settings.METRICS_ENABLED or not _allowed(request.META.get("REMOTE_ADDR", "")):
        raise Http404
    return exposition()
