"""Liveness and readiness for load balancers and orchestrators: outside the API root, without
authentication, and cheap enough to be called every second.

A balancer or a Kubernetes probe sends the server's address as `Host`, which ALLOWED_HOSTS rightly
refuses everywhere else: `ProbesAnyHost` answers the two probe paths before anything reads the
host, and every other path keeps ALLOWED_HOSTS.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from io import StringIO

from celery import current_app
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import resolve
from django.views.decorators.csrf import csrf_exempt

logger = logging.getLogger(__name__)
READING_METHODS = ("GET", "HEAD")


def _only_reading(view):
    def guarded(request: HttpRequest) -> JsonResponse:
        if request.method not in READING_METHODS:
            return JsonResponse(
                {"status": "method not allowed"}, status=405, headers={"Allow": "GET, HEAD"}
            )
        return view(request)

    guarded.__name__ = view.__name__
    return csrf_exempt(guarded)


@_only_reading
def live(request: HttpRequest) -> JsonResponse:
    """The process answers: nothing else is checked, so a slow database never restarts it."""
    return JsonResponse({"status": "ok"})


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


_migrated = False


def _schema() -> None:
    """The database holds every migration: a server started on an unmigrated database (say, one
    the migrations did not run on) is not ready, though the database answers."""
    global _migrated
    if _migrated:  # once migrated, a database stays so for this process
        return
    try:
        # Django's documented check: `migrate --check` exits non-zero when some are unapplied.
        call_command("migrate", check_unapplied=True, verbosity=0, stdout=StringIO())
    except SystemExit:
        raise NotMigrated("some migrations are not applied") from None
    _migrated = True


class NotMigrated(Exception):
    pass


def _cache() -> None:
    ping = getattr(cache, "ping", None)
    if ping is not None:
        ping()  # Redis itself, not the in-process fallback
    else:
        cache.set("health:ready", "1", 5)


def _broker() -> None:
    # The project's Celery app (config.celery), which Django's start made the current one.
    with current_app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=1)


CHECKS = {"database": _database, "schema": _schema, "cache": _cache, "broker": _broker}


@_only_reading
def ready(request: HttpRequest) -> JsonResponse:
    """Whether this instance can serve: its database, cache and broker answer."""
    results = {}
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as error:  # any failure means not ready; the type says which
            results[name] = f"failing: {type(error).__name__}"
            logger.warning("readiness check failed", extra={"check": name, "error": str(error)})
    ok = all(result == "ok" for result in results.values())
    return JsonResponse(
        {"status": "ok" if ok else "failing", "checks": results}, status=200 if ok else 503
    )


PROBE_PATHS = ("/health/live", "/health/ready")


class ProbesAnyHost:
    """Answer the health probes whatever the Host header; pass every other request on."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.rstrip("/") not in PROBE_PATHS:
            return self.get_response(request)
        # Resolved as Django would, so that metrics count the probe under its view's name.
        request.resolver_match = resolve(request.path_info)
        return request.resolver_match.func(request)
