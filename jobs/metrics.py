"""What Prometheus counts, with prometheus-client and nothing between it and Django: requests,
responses, latencies and database queries (the names django-prometheus gave them, which
dashboards already read), and the jobs' own counters. Only with METRICS_ENABLED: off, nothing here
runs on a request (`MetricsMiddleware` is not installed).

django-prometheus supported no Django after 6.0; this is the part of it the service used.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from django.db import connections
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client import REGISTRY as PROCESS_REGISTRY

TRANSITIONS = Counter(
    "jobs_transitions",
    "Jobs moved (outcome: the transition's past tense) or refused (outcome: the error code), "
    "by transition and channel.",
    ["transition", "channel", "outcome"],
)
WEBHOOK_DELIVERIES = Counter(
    "jobs_webhook_deliveries",
    "Webhook delivery attempts by outcome: succeeded, retrying (will be tried again), failed.",
    ["outcome"],
)


def count_transition(transition: str, channel: str, outcome: str, amount: int = 1) -> None:
    """Jobs moved (outcome: the past tense) or refused (the code)."""
    TRANSITIONS.labels(transition, channel, outcome).inc(amount)


ACCESS_REFUSALS = Counter(
    "jobs_access_refusals",
    "Refusals of who may see and move which job, by door (api, admin, command) and reason: "
    "JOB_NOT_FOUND (a job not seen answers as one that does not exist) or PERMISSION_DENIED.",
    ["door", "reason"],
)
access_log = logging.getLogger("jobs.access")


def access_refused(door: str, reason: str, user: Any, target: str, amount: int = 1) -> None:
    """Count and log a refusal: who, through which door, of which job id or filter (`target`,
    as the caller named it), never the job's content."""
    ACCESS_REFUSALS.labels(door, reason).inc(amount)
    access_log.warning(
        "access refused",
        extra={
            "door": door,
            "reason": reason,
            "user_id": getattr(user, "pk", None),
            "target": target,
            "jobs": amount,
        },
    )


REQUESTS_BY_METHOD = Counter(
    "django_http_requests_total_by_method", "Requests by method.", ["method"]
)
REQUESTS_BY_VIEW = Counter(
    "django_http_requests_total_by_view_transport_method",
    "Requests by view (its URL name), transport and method.",
    ["view", "transport", "method"],
)
RESPONSES_BY_STATUS = Counter(
    "django_http_responses_total_by_status_view_method",
    "Responses by status, view and method.",
    ["status", "view", "method"],
)
LATENCY = Histogram(
    "django_http_requests_latency_seconds_by_view_method",
    "Seconds from the request's arrival to its answer, by view and method.",
    ["view", "method"],
)
EXCEPTIONS = Counter(
    "django_http_exceptions_total_by_type", "Exceptions raised by views, by type.", ["type"]
)
QUERIES = Counter(
    "django_db_execute_total", "Database statements run, by database.", ["alias", "vendor"]
)
QUERY_ERRORS = Counter(
    "django_db_errors_total",
    "Database statements that failed, by type.",
    ["alias", "vendor", "type"],
)
QUERY_SECONDS = Histogram(
    "django_db_query_duration_seconds", "Seconds a statement took.", ["alias", "vendor"]
)


def _query_counter(alias: str, vendor: str) -> Callable[..., Any]:
    """A database execute wrapper (Django's documented instrumentation) that counts and times."""

    def counted(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        except Exception as error:
            QUERY_ERRORS.labels(alias, vendor, type(error).__name__).inc()
            raise
        finally:
            QUERIES.labels(alias, vendor).inc()
            QUERY_SECONDS.labels(alias, vendor).observe(time.perf_counter() - started)

    return counted


def _view_name(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    return (match.view_name if match is not None else None) or "<unnamed view>"


class MetricsMiddleware:
    """Counts and times each request, its answer and the statements it ran."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        method = request.method or ""
        REQUESTS_BY_METHOD.labels(method).inc()
        with ExitStack() as wrapped:
            for connection in connections.all():
                wrapped.enter_context(
                    connection.execute_wrapper(_query_counter(connection.alias, connection.vendor))
                )
            response = self.get_response(request)
        view = _view_name(request)
        transport = "https" if request.is_secure() else "http"
        REQUESTS_BY_VIEW.labels(view, transport, method).inc()
        RESPONSES_BY_STATUS.labels(str(response.status_code), view, method).inc()
        LATENCY.labels(view, method).observe(time.perf_counter() - started)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        EXCEPTIONS.labels(type(exception).__name__).inc()


def exposition() -> HttpResponse:
    """The page Prometheus scrapes: this process's metrics, or, under gunicorn, every worker's
    added up through PROMETHEUS_MULTIPROC_DIR."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = PROCESS_REGISTRY
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
