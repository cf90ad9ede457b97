"""API benchmark: a start request against the database's own cost, and what sparse fieldsets save.

    make bench

(a) POST jobs/all_scopes/start_progress through the full DRF stack, with the full answer and with
    fields_set=id,life_cycle_state, against (b) a minimal plain Django view doing the same (the same
    authentication, service and JSON) and (c) the raw transaction: the same statements written by
    hand on the driver (lock, compare-and-set UPDATE, log and event INSERTs, COMMIT). Same process,
    same database, requests interleaved in rounds; each printed as a ratio to (c).
    Targets: the full answer at most 2.5x the raw transaction, the sparse one at most 2x; DRF at
    least 0.7x the plain view's requests per second. One more variant has the metrics on.
(d) GET jobs with 100 jobs per page: fields_set=id,number against the full representation: time,
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

    from jobs.api.authentication import CrmTokenAuthentication
    from jobs.api.envelope import envelope
    from jobs.api.serializers import job_answer, parse_fields_set
    from jobs.identifiers import JOB_IDENTIFIER_FIELDS, parse_identifier
    from jobs.models import Channel
    from jobs.services import job_transition

    auth = CrmTokenAuthentication()
    token = auth.get_validated_token(auth.get_raw_token(auth.get_header(request)))
    user = auth.get_user(token)
    body = json.loads(request.body)
    answer = job_answer(parse_fields_set(body.get("fields_set")))
    job = job_transition(
        transition="start_progress",
        job=parse_identifier(
            body["job_identifier"], fields=JOB_IDENTIFIER_FIELDS, parameter="job_identifier"
        ),
        status=body.get("status_identifier"),
        user=user,
        channel=Channel.API,
        load=answer.columns,
    )
    return JsonResponse(envelope(answer.render(job)))


def urlpatterns_with_plain_view():
    from django.urls import path

    from config.urls import urlpatterns

    return [path(PLAIN.lstrip("/"), plain_start_progress), *urlpatterns]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # Enough requests that a pause of the machine's (a full garbage collection, autovacuum, a
    # checkpoint) weighs on each variant alike rather than on the one it happens to hit.
    parser.add_argument("--requests", type=int, default=1200, help="start requests per variant")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with throwaway_database() as vendor:
        import sys

        from django.conf import settings

        sys.modules[__name__].urlpatterns = urlpatterns_with_plain_view()
        settings.ROOT_URLCONF = __name__
        user, types = make_dispatcher(), make_types()
        start_progress_figures(vendor, user, types, args.requests, args.rounds)
        step_figures(vendor, user, types, args.requests // 2)
        list_figures(vendor)


FULL = None
SPARSE = "id,life_cycle_state"


def raw_transaction(vendor: str, user_id: int):
    """The same work done by hand on the driver, outside Django: lock the job (with its type's
    default status), the compare-and-set UPDATE, the log and event INSERTs, COMMIT. The floor a
    start request stands on."""
    import json

    from django.db import connection
    from django.utils import timezone

    from jobs.models import new_event_id

    if vendor == "postgresql":
        import psycopg

        params = connection.get_connection_params()
        raw = psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"})
        lock = (
            "SELECT j.id, j.status_id, t.default_start_status_id FROM jobs_job j "
            "JOIN jobs_jobtype t ON t.id = j.type_id WHERE j.number = %s FOR UPDATE OF j"
        )
        begin = None
        data, txid = "%s::jsonb", "pg_current_xact_id()::text::bigint"
    else:
        import sqlite3

        raw = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
        lock = (
            "SELECT j.id, j.status_id, t.default_start_status_id FROM jobs_job j "
            "JOIN jobs_jobtype t ON t.id = j.type_id WHERE j.number = ?"
        )
        begin = "BEGIN IMMEDIATE"
        data, txid = "?", "0"
    mark = "%s" if vendor == "postgresql" else "?"
    update = (
        f"UPDATE jobs_job SET life_cycle_state = 'IN_PROGRESS', status_id = {mark}, "
        f"updated_date = {mark}, updated_by_user_id = {mark}, actual_start_date = {mark}, "
        "version = version + 1 "
        f"WHERE id = {mark} AND life_cycle_state = 'PENDING'"
    )
    insert = (
        "INSERT INTO jobs_jobtransitionlog (job_id, transition, from_state, to_state, "
        "from_status_id, to_status_id, user_id, channel, created_at) VALUES "
        f"({mark}, 'start_progress', 'PENDING', 'IN_PROGRESS', {mark}, {mark}, {mark}, 'api', "
        f"{mark})"
    )
    event = (
        "INSERT INTO jobs_event (public_id, type, timestamp, data, txid, fanned_out, job_id) "
        f"VALUES ({mark}, 'job.started', {mark}, {data}, {txid}, FALSE, {mark})"
    )

    def start(number: str) -> None:
        cursor = raw.cursor()
        if begin:
            cursor.execute(begin)
        cursor.execute(lock, [number])
        job_id, from_status, to_status = cursor.fetchone()
        now = timezone.now() if vendor == "postgresql" else timezone.now().isoformat()
        cursor.execute(update, [to_status, now, user_id, now, job_id])
        if cursor.rowcount != 1:
            raise SystemExit("raw: the job was not pending")
        cursor.execute(insert, [job_id, from_status, to_status, user_id, now])
        happened = {
            "job": {"id": job_id, "number": number},
            "from_state": "PENDING",
            "to_state": "IN_PROGRESS",
            "from_status": {"id": from_status},
            "to_status": {"id": to_status},
            "user": {"id": user_id},
            "channel": "api",
        }
        cursor.execute(event, [new_event_id(), now, json.dumps(happened), job_id])
        raw.commit() if vendor == "postgresql" else cursor.execute("COMMIT")

    return start, raw


def start_progress_figures(vendor: str, user, types, requests: int, rounds: int) -> None:
    """Each way of starting a job, interleaved in rounds on the same database: the DRF action and
    the plain view, with the full answer and with fields_set=id,life_cycle_state, and the raw
    transaction; each as a ratio to the raw one. One more variant is the DRF action with the raw
    transaction in place of the service: what the door itself costs, the least a request can
    take whatever the service does."""
    from types import SimpleNamespace
    from unittest import mock

    from django.conf import settings
    from django.test import Client, override_settings
    from rest_framework_simplejwt.tokens import SlidingToken

    from jobs.api import transitions
    from jobs.models import Job

    client = Client(HTTP_AUTHORIZATION=f"Bearer {SlidingToken.for_user(user)}")
    # The same, with Prometheus's metrics on (METRICS_ENABLED): what counting costs a request.
    metered = Client(HTTP_AUTHORIZATION=f"Bearer {SlidingToken.for_user(user)}")
    with override_settings(MIDDLEWARE=["jobs.metrics.MetricsMiddleware", *settings.MIDDLEWARE]):
        metered.handler.load_middleware()
    raw_start, raw = raw_transaction(vendor, user.pk)
    variants = {
        "DRF action, full answer": (START, FULL),
        "DRF action, id,life_cycle_state": (START, SPARSE),
        "DRF action, full, metrics on": (START, FULL),
        "plain view, full answer": (PLAIN, FULL),
        "plain view, id,life_cycle_state": (PLAIN, SPARSE),
        "DRF action, raw as the service": (START, SPARSE),
        "raw transaction": (None, None),
    }

    def raw_as_the_service(*, job, **_ignored):
        raw_start(job["number"])
        return SimpleNamespace(id=0, pk=0, life_cycle_state="IN_PROGRESS", version=1)

    per_round = requests // rounds
    warm_up = 20  # requests per variant, untimed: what is built and prepared once is ready
    make_pending_jobs(types, len(variants) * (per_round * rounds + warm_up))
    numbers = iter(Job.objects.order_by("pk").values_list("number", flat=True))
    seconds = dict.fromkeys(variants, 0.0)
    names = list(variants)

    def run(name: str, count: int) -> float:
        url, fields_set = variants[name]
        batch = [next(numbers) for _ in range(count)]
        service = raw_as_the_service if "raw as the service" in name else transitions.job_transition
        caller = metered if "metrics on" in name else client
        with mock.patch.object(transitions, "job_transition", service):
            began = time.perf_counter()
            for number in batch:
                if url is None:
                    raw_start(number)
                    continue
                body = {"job_identifier": {"number": number}}
                if fields_set:
                    body["fields_set"] = fields_set
                response = caller.post(url, body, content_type="application/json")
                if response.status_code != 200:
                    raise SystemExit(f"{url}: {response.status_code} {response.content[:200]}")
            return time.perf_counter() - began

    for name in names:
        run(name, warm_up)
    for round_ in range(rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            seconds[name] += run(name, per_round)
    raw.close()
    done = per_round * rounds
    floor = seconds["raw transaction"] / done
    print(f"\nPOST start_progress on {vendor}, {done:,} requests each, in-process, interleaved")
    print(f"  {'variant':<34}{'ms':>8}{'req/s':>9}{'vs raw':>9}")
    for name in names:
        each = seconds[name] / done
        print(f"  {name:<34}{each * 1000:>8.2f}{1 / each:>9,.0f}{each / floor:>8.1f}x")
    full = seconds["DRF action, full answer"] / done / floor
    sparse = seconds["DRF action, id,life_cycle_state"] / done / floor
    full_ok = "met" if full <= 2.5 else "MISSED"
    print(f"  full answer vs raw: {full:.1f}x (target <= 2.5x: {full_ok})")
    sparse_ok = "met" if sparse <= 2 else "MISSED"
    print(f"  id,life_cycle_state vs raw: {sparse:.1f}x (target <= 2x: {sparse_ok})")
    metered_cost = (
        seconds["DRF action, full, metrics on"] - seconds["DRF action, full answer"]
    ) / done
    print(f"  metrics on: {metered_cost * 1000:+.3f} ms a request")
    plain = seconds["plain view, full answer"] / seconds["DRF action, full answer"]
    plain_ok = "met" if plain >= 0.7 else "MISSED"
    print(f"  DRF / plain view: {plain:.2f}x the requests per second (target >= 0.7x: {plain_ok})")


def step_figures(vendor: str, user, types, requests: int) -> None:
    """Where a DRF start request's time goes: authentication (token and user), the permission
    check, the service (lock, write, log, event, commit, broker message) and rendering the answer;
    the rest is Django, DRF and the middleware."""
    import functools
    from collections import Counter

    from django.test import Client
    from rest_framework.request import Request
    from rest_framework.views import APIView
    from rest_framework_simplejwt.tokens import SlidingToken

    from jobs.api import transitions
    from jobs.models import Job

    spent: Counter[str] = Counter()

    def timing(owner, name: str, step: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            began = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[step] += time.perf_counter() - began

        setattr(owner, name, timed)

    timing(Request, "_authenticate", "authentication")
    timing(APIView, "check_permissions", "permission")
    timing(transitions, "job_transition", "service")
    timing(transitions.TransitionEndpoints, "_move", "service and render")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {SlidingToken.for_user(user)}")
    make_pending_jobs(types, 2 * requests, prefix="ST")
    pending = Job.objects.filter(life_cycle_state="PENDING").order_by("pk")
    numbers = iter(pending.values_list("number", flat=True))
    print(f"\nWhere a DRF start request's time goes on {vendor}, ms ({requests:,} requests each)")
    print(
        f"  {'answer':<20}{'total':>7}{'auth':>7}{'perm':>7}{'service':>9}{'render':>8}{'rest':>7}"
    )
    for label, fields_set in (("full", FULL), (SPARSE, SPARSE)):
        spent.clear()
        began = time.perf_counter()
        for _ in range(requests):
            body = {"job_identifier": {"number": next(numbers)}}
            if fields_set:
                body["fields_set"] = fields_set
            response = client.post(START, body, content_type="application/json")
            if response.status_code != 200:
                raise SystemExit(f"{START}: {response.status_code} {response.content[:200]}")
        total = (time.perf_counter() - began) / requests * 1000
        each = {step: seconds / requests * 1000 for step, seconds in spent.items()}
        render = each["service and render"] - each["service"]
        rest = total - each["authentication"] - each["permission"] - each["service and render"]
        print(
            f"  {label:<20}{total:>7.2f}{each['authentication']:>7.2f}{each['permission']:>7.2f}"
            f"{each['service']:>9.2f}{render:>8.2f}{rest:>7.2f}"
        )


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
