"""What metrics cost a request: none, this project's middleware on prometheus-client
(jobs.metrics), and OpenTelemetry's Django instrumentation with its Prometheus exporter, which
was the other way to replace django-prometheus (it has no release for Django 6.1).

    .venv/bin/pip install opentelemetry-instrumentation-django opentelemetry-exporter-prometheus
    .venv/bin/python benchmarks/metrics_choice.py

GET jobs (one job, fields_set=id) through Django's test client (SQLite, or DATABASE_URL's
database), the three interleaved
in rounds; each printed with what it adds to a request. OpenTelemetry is left out, with a line
saying so, where its packages are not installed (they are not the project's dependencies).
"""

from __future__ import annotations

import time

from common import make_dispatcher, make_pending_jobs, make_types, throwaway_database

URL = "/crmapi/rest/v2/jobs?number_of_results=1&fields_set=id"
REQUESTS, ROUNDS = 300, 10


def clients() -> dict:
    from django.conf import settings
    from django.test import Client, override_settings
    from rest_framework_simplejwt.tokens import SlidingToken

    auth = f"Bearer {SlidingToken.for_user(make_dispatcher())}"
    made = {"no metrics": Client(HTTP_AUTHORIZATION=auth)}
    ours = Client(HTTP_AUTHORIZATION=auth)
    with override_settings(MIDDLEWARE=["jobs.metrics.MetricsMiddleware", *settings.MIDDLEWARE]):
        ours.handler.load_middleware()
    made["prometheus-client middleware (ours)"] = ours
    try:
        from opentelemetry import metrics
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.instrumentation.django import DjangoInstrumentor
        from opentelemetry.sdk.metrics import MeterProvider
    except ImportError:
        print("OpenTelemetry is not installed: measuring ours alone (see the docstring).")
        return made
    metrics.set_meter_provider(MeterProvider(metric_readers=[PrometheusMetricReader()]))
    middleware = list(settings.MIDDLEWARE)
    DjangoInstrumentor().instrument()  # puts its middleware first in settings.MIDDLEWARE
    instrumented = Client(HTTP_AUTHORIZATION=auth)
    instrumented.handler.load_middleware()
    settings.MIDDLEWARE = middleware
    made["OpenTelemetry Django + Prometheus"] = instrumented
    return made


def main() -> None:
    with throwaway_database() as vendor:
        make_pending_jobs(make_types(), 1)
        timed = clients()
        for client in timed.values():
            for _ in range(50):  # untimed: what is built once is ready
                assert client.get(URL).status_code == 200
        seconds = dict.fromkeys(timed, 0.0)
        for _ in range(ROUNDS):
            for name, client in timed.items():
                began = time.perf_counter()
                for _ in range(REQUESTS):
                    client.get(URL)
                seconds[name] += time.perf_counter() - began
        base = seconds["no metrics"] / (REQUESTS * ROUNDS)
        print(f"\nGET jobs on {vendor}, {REQUESTS * ROUNDS:,} requests each, interleaved")
        for name, total in seconds.items():
            each = total / (REQUESTS * ROUNDS)
            print(f"  {name:<40}{each * 1000:8.3f} ms{(each - base) * 1000:+9.3f} ms")


if __name__ == "__main__":
    main()
