"""Who sees which job, measured: a dispatcher who sees one unit's jobs out of ten against a
superuser, on the same work.

    make bench        (on DATABASE_URL's PostgreSQL; SQLite otherwise)

Ten units own the jobs in turn (and a third of the jobs are assigned to a unit as well). The
scoped dispatcher belongs to one unit; the superuser sees everything. Side by side, in one run:
(a) a start request, with the full answer and with fields_set=id,life_cycle_state, interleaved in
    rounds (each starts a job of its own: the dispatcher one of its unit's, the superuser one of
    another unit's);
(b) a page of GET jobs (the first, newest first, with its total), the median of many: the
    dispatcher's (their unit's 10,000) against the superuser's (all 100,000); and, stricter, the
    superuser's page of the same 10,000 jobs (?owned_by_group=), printed beside;
(c) a bulk start of every pending job a user means: the superuser's the 10,000 of one unit,
    chosen by owner; the dispatcher's "every pending job", which the rule narrows to the 10,000
    of their unit.
Each is printed as scoped / superuser; the goal is at most 1.2x on each.
"""

from __future__ import annotations

import argparse
import statistics
import time

from common import make_dispatcher, make_jobs, make_types, throwaway_database

START = "/crmapi/rest/v2/jobs/all_scopes/start_progress"
JOBS = "/crmapi/rest/v2/jobs"
UNITS = 10
GOAL = 1.2


def own_units(vendor: str) -> list:
    """Ten units owning the jobs in turn (by id), a third of the jobs assigned to a unit too."""
    from django.contrib.auth.models import Group
    from django.db import connection

    units = [Group.objects.create(name=f"Unit {n}") for n in range(UNITS)]
    with connection.cursor() as cursor:
        for index, unit in enumerate(units):
            cursor.execute(
                "UPDATE jobs_job SET owned_by_group_id = %s WHERE id %% %s = %s",
                [unit.pk, UNITS, index],
            )
        cursor.execute(
            "INSERT INTO jobs_assignment (job_id, unit_id) "
            "SELECT id, owned_by_group_id FROM jobs_job WHERE id %% %s = 0",
            [3],
        )
        if vendor == "postgresql":
            cursor.execute("VACUUM ANALYZE jobs_job, jobs_assignment")
    return units


def numbers_of(unit, state: str = "PENDING") -> list[str]:
    from jobs.models import Job

    jobs = Job.objects.filter(owned_by_group=unit, life_cycle_state=state).order_by("pk")
    return list(jobs.values_list("number", flat=True))


def start_requests(clients: dict, units: dict, requests: int, rounds: int) -> dict[str, float]:
    """Seconds per request for each (who, answer), interleaved in rounds."""
    queues = {who: iter(numbers_of(unit)) for who, unit in units.items()}
    variants = [(who, answer) for who in clients for answer in ("full", "sparse")]
    spent = dict.fromkeys(variants, 0.0)
    per_round = requests // rounds

    def run(variant, count: int) -> float:
        who, answer = variant
        began = time.perf_counter()
        for _ in range(count):
            body = {"job_identifier": {"number": next(queues[who])}}
            if answer == "sparse":
                body["fields_set"] = "id,life_cycle_state"
            response = clients[who].post(START, body, content_type="application/json")
            if response.status_code != 200:
                raise SystemExit(f"{who}: {response.status_code} {response.content[:200]}")
        return time.perf_counter() - began

    for variant in variants:
        run(variant, 20)  # untimed: what is prepared once is ready
    for round_ in range(rounds):
        for variant in variants[round_ % len(variants) :] + variants[: round_ % len(variants)]:
            spent[variant] += run(variant, per_round)
    return {variant: seconds / (per_round * rounds) for variant, seconds in spent.items()}


def page_of_jobs(client, times: int, **filters) -> tuple[float, int]:
    timings = []
    for _ in range(times):
        began = time.perf_counter()
        response = client.get(JOBS, filters)
        timings.append(time.perf_counter() - began)
        if response.status_code != 200:
            raise SystemExit(f"GET jobs: {response.status_code}")
    return statistics.median(timings), response.json()["paging"]["total"]


def bulk_start(user, jobs) -> tuple[float, int]:
    from jobs.services import job_bulk_transition

    began = time.perf_counter()
    summary = job_bulk_transition(
        transition="start_progress", jobs=jobs, user=user, channel="command"
    )
    return time.perf_counter() - began, summary.done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-unit", type=int, default=10_000, help="jobs each unit owns")
    parser.add_argument("--requests", type=int, default=1000, help="start requests per variant")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    if 2 * (args.requests + 20) > args.per_unit:
        parser.error("each user starts 2 x (requests + 20) of one unit's jobs: raise --per-unit")
    with throwaway_database() as vendor:
        from django.contrib.auth import get_user_model
        from django.test import Client
        from rest_framework_simplejwt.tokens import SlidingToken

        from jobs.models import Job

        types = make_types()
        make_jobs(types, UNITS * args.per_unit)
        units = own_units(vendor)
        superuser = get_user_model().objects.create(username="bench-admin", is_superuser=True)
        scoped = make_dispatcher("bench-unit-dispatcher", unit=units[0])
        bulk_scoped = make_dispatcher("bench-other-unit-dispatcher", unit=units[3])

        def client(user):
            return Client(HTTP_AUTHORIZATION=f"Bearer {SlidingToken.for_user(user)}")

        clients = {"scoped": client(scoped), "superuser": client(superuser)}
        print(
            f"\nWho sees which job on {vendor}: {UNITS} units of {args.per_unit:,} jobs; the "
            f"scoped dispatcher sees one unit's, the superuser every job"
        )
        each = start_requests(
            clients, {"scoped": units[0], "superuser": units[1]}, args.requests, args.rounds
        )
        print(f"  {'':<34}{'scoped':>10}{'superuser':>11}{'ratio':>8}")
        ratios = []

        def line(label: str, mine: float, theirs: float, unit: str = "ms") -> None:
            ratio = mine / theirs
            ratios.append(ratio)
            print(f"  {label:<34}{mine:>8.2f}{unit:>2}{theirs:>9.2f}{unit:>2}{ratio:>7.2f}x")

        for answer, label in (
            ("full", "start request, full answer"),
            ("sparse", "start, id,life_cycle_state"),
        ):
            line(label, each[("scoped", answer)] * 1000, each[("superuser", answer)] * 1000)
        # A page of GET jobs each; and, stricter, the superuser's page of the very jobs the
        # rule gives the dispatcher (by owner: the owner's index alone counts them).
        mine, seen = page_of_jobs(clients["scoped"], 60)
        theirs, every = page_of_jobs(clients["superuser"], 60)
        line(f"GET jobs page ({seen:,} / {every:,} jobs)", mine * 1000, theirs * 1000)
        same_page, same = page_of_jobs(clients["superuser"], 60, owned_by_group=units[0].pk)
        if seen != same:
            raise SystemExit(f"unequal pages: {seen} jobs against {same}")
        print(
            f"  (the superuser's page of the same {same:,} jobs, ?owned_by_group=: "
            f"{same_page * 1000:.2f}ms; the dispatcher's is {mine / same_page:.2f}x that)"
        )
        theirs, moved_by_superuser = bulk_start(
            superuser, Job.objects.filter(owned_by_group=units[2], life_cycle_state="PENDING")
        )
        mine, moved_by_scoped = bulk_start(
            bulk_scoped, Job.objects.filter(life_cycle_state="PENDING")
        )
        if moved_by_scoped != moved_by_superuser:
            raise SystemExit(f"unequal work: {moved_by_scoped} against {moved_by_superuser}")
        line(f"bulk start of {moved_by_scoped:,} jobs", mine, theirs, "s")
        worst = max(ratios)
        print(
            f"  worst ratio {worst:.2f}x (goal <= {GOAL}x: {'met' if worst <= GOAL else 'MISSED'})"
        )


if __name__ == "__main__":
    main()
