"""API benchmark: what the DRF stack costs, and what sparse fieldsets save.

    make bench

(a) POST jobs/all_scopes/start_progress through the full DRF stack, against a minimal plain Django
    view that authenticates the same way (simplejwt, blacklist check, user lookup), calls the same
    service and returns the same JSON: same process, same database, requests interleaved in rounds.
    Target: DRF at least 0.7x the plain view's requests per second.
(b) GET jobs with 100 jobs per page: fields_set=id,number against the full representation: time,
    queries and bytes.
Requests go through Django's test client (no network), so the figures are the application's own.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from common import make_dispatcher, make_pending_jobs, make_types, throwaway_database

START = "/crmapi/rest/v2/jobs/all_scopes/start_progress"
PLAIN = "/plain/start_progress"


def plain_start_progress(request):
    """The least a hand-written Django view must do to give the same answer as the DRF action."""
    from django.http import JsonResponse
    from rest_framework_simplejwt.authentication import JWTAuthentication

    from jobs.api.envelope import envelope
    from jobs.api.serializers import JobSerializer, parse_fields_set, shaped
    from jobs.identifiers import JOB_IDENTIFIER_FIELDS, parse_identifier
    from jobs.models import Channel, Job
    from jobs.services import start_progress

    auth = JWTAuthentication()
    token = auth.get_validated_token(auth.get_raw_token(auth.get_header(request)))
    user = auth.get_user(token)
    body = json.loads(request.body)
    selection = parse_fields_set(body.get("fields_set"))
    job = start_progress(
        job=parse_identifier(
            body["job_identifier"], fields=JOB_IDENTIFIER_FIELDS, parameter="job_identifier"
        ),
        status=body.get("status_identifier"),
        user=user,
        channel=Channel.API,
    )
    serializer = JobSerializer(selection=selection)
    serializer.instance = shaped(Job.objects.filter(pk=job.pk), serializer).get()
    return JsonResponse(envelope(serializer.data))


def urlpatterns_with_plain_view():
    from django.urls import path

    from config.urls import urlpatterns

    return [path(PLAIN.lstrip("/"), plain_start_progress), *urlpatterns]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="start requests per variant")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    with throwaway_database() as vendor:
        import sys

        from django.conf import settings

        sys.modules[__name__].urlpatterns = urlpatterns_with_plain_view()
        settings.ROOT_URLCONF = __name__
        start_progress_figures(vendor, args.requests, args.rounds)
        list_figures(vendor)


def start_progress_figures(vendor: str, requests: int, rounds: int) -> None:
    from django.test import Client
    from rest_framework_simplejwt.tokens import SlidingToken

    from jobs.models import Job

    user = make_dispatcher()
    types = make_types()
    client = Client(HTTP_AUTHORIZATION=f"Bearer {SlidingToken.for_user(user)}")
    make_pending_jobs(types, 2 * requests)
    numbers = list(Job.objects.order_by("pk").values_list("number", flat=True))
    per_round = requests // rounds
    seconds = {START: 0.0, PLAIN: 0.0}
    for round_ in range(rounds):
        for offset, url in enumerate((START, PLAIN) if round_ % 2 else (PLAIN, START)):
            first = (2 * round_ + offset) * per_round
            batch = numbers[first : first + per_round]
            began = time.perf_counter()
            for number in batch:
                response = client.post(
                    url,
                    {"job_identifier": {"number": number}, "fields_set": "id,number,status"},
                    content_type="application/json",
                )
                if response.status_code != 200:
                    raise SystemExit(f"{url}: {response.status_code} {response.content[:200]}")
            seconds[url] += time.perf_counter() - began
    done = per_round * rounds
    drf, plain = done / seconds[START], done / seconds[PLAIN]
    ratio = drf / plain
    print(f"\nPOST start_progress on {vendor}, {done:,} requests each, in-process")
    print(f"  DRF action        {drf:8,.0f} req/s")
    print(f"  plain Django view {plain:8,.0f} req/s")
    print(f"  DRF / plain: {ratio:.2f}x  (target >= 0.7x: {'met' if ratio >= 0.7 else 'MISSED'})")


def list_figures(vendor: str) -> None:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from rest_framework_simplejwt.tokens import SlidingToken

    from jobs.models import Assignment, Job

    user = Job.objects.values_list("updated_by_user", flat=True).first()
    from django.contrib.auth import get_user_model

    client = Client(
        HTTP_AUTHORIZATION=f"Bearer {SlidingToken.for_user(get_user_model().objects.get(pk=user))}"
    )
    Assignment.objects.bulk_create(
        Assignment(job_id=pk, user_id=user) for pk in Job.objects.values_list("pk", flat=True)[:100]
    )
    print(f"\nGET jobs, 100 per page, on {vendor}")
    print(f"  {'fields_set':<16}{'ms (median)':>12}{'queries':>9}{'bytes':>9}")
    results = {}
    for label, params in (("id,number", {"fields_set": "id,number"}), ("(all fields)", {})):
        params = {"number_of_results": 100, **params}
        timings = []
        for _ in range(30):
            began = time.perf_counter()
            response = client.get("/crmapi/rest/v2/jobs", params)
            timings.append(time.perf_counter() - began)
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/crmapi/rest/v2/jobs", params)
        results[label] = statistics.median(timings)
        print(
            f"  {label:<16}{results[label] * 1000:>12.2f}{len(queries):>9}"
            f"{len(response.content):>9,}"
        )
    print(f"  id,number is {results['(all fields)'] / results['id,number']:.1f}x faster")


if __name__ == "__main__":
    main()
