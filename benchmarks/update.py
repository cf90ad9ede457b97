"""Update benchmark: PATCH jobs/{id} (the full answer) against the raw transaction that does the
same work (lock and read the job, write the changed column with its version, the update's record
and its event), side by side in one run.

    make bench        (on DATABASE_URL's PostgreSQL; SQLite otherwise)

(a) PATCH jobs/{id} through the whole DRF stack with the full answer, and (b) the same with the
If-Match of the previous answer, against (c) the raw transaction on the driver. Each call changes
the job's notes (every update writes). (d) GET jobs/{id} with the full answer shows what the door
costs with no update at all. Requests are interleaved in rounds; each is printed as a ratio to
(c). Goal: (a) at most 3x.
"""

from __future__ import annotations

import argparse
import itertools
import json

from common import (
    interleaved,
    make_dispatcher,
    make_jobs,
    make_types,
    print_against,
    throwaway_database,
)

JOBS = "/crmapi/rest/v2/jobs"
GOAL = 3.0


def raw_update(vendor: str, user_id: int, job_id: int):
    """The same work by hand on the driver, outside Django: the floor an update stands on."""
    from django.db import connection
    from django.utils import timezone

    from jobs.models import new_event_id

    if vendor == "postgresql":
        import psycopg

        params = connection.get_connection_params()
        raw = psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"})
        mark, data, txid, begin, lock = (
            "%s",
            "%s::jsonb",
            "pg_current_xact_id()::text::bigint",
            None,
            " FOR UPDATE",
        )
    else:
        import sqlite3

        raw = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
        mark, data, txid, begin, lock = "?", "?", "0", "BEGIN IMMEDIATE", ""
    read = f"SELECT number, notes, version FROM jobs_job WHERE id = {mark}{lock}"
    write = (
        f"UPDATE jobs_job SET notes = {mark}, updated_date = {mark}, updated_by_user_id = {mark}, "
        f"version = version + 1 WHERE id = {mark} AND version = {mark}"
    )
    record = (
        "INSERT INTO jobs_jobupdate (job_id, user_id, channel, created_at, changes) "
        f"VALUES ({mark}, {mark}, 'api', {mark}, {data})"
    )
    event = (
        "INSERT INTO jobs_event (public_id, type, timestamp, data, txid, fanned_out, job_id) "
        f"VALUES ({mark}, 'job.updated', {mark}, {data}, {txid}, FALSE, {mark})"
    )
    notes = itertools.cycle(["call first", "ring twice"])

    def update() -> None:
        cursor = raw.cursor()
        if begin:
            cursor.execute(begin)
        now = timezone.now() if vendor == "postgresql" else timezone.now().isoformat()
        cursor.execute(read, [job_id])
        number, old, version = cursor.fetchone()
        new = next(notes)
        cursor.execute(write, [new, now, user_id, job_id, version])
        changes = json.dumps({"notes": {"from": old, "to": new}})
        cursor.execute(record, [job_id, user_id, now, changes])
        happened = {"job": {"id": job_id, "number": number}, "changes": json.loads(changes)}
        cursor.execute(event, [new_event_id(), now, json.dumps(happened), job_id])
        raw.commit() if vendor == "postgresql" else cursor.execute("COMMIT")

    return update, raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="updates per variant")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with throwaway_database() as vendor:
        from django.contrib.auth.models import Permission
        from django.test import Client
        from rest_framework_simplejwt.tokens import SlidingToken

        user = make_dispatcher()
        user.user_permissions.add(Permission.objects.get(codename="change_job"))
        plain, guarded, by_hand, read = make_jobs(make_types(1), 4)
        client = Client(HTTP_AUTHORIZATION=f"Bearer {SlidingToken.for_user(user)}")
        notes = itertools.cycle(["call first", "ring twice"])
        etag = [client.get(f"{JOBS}/{guarded}").headers["ETag"]]

        def api(job_id: int, headers: dict[str, str]) -> str:
            body = {"notes": next(notes)}
            response = client.patch(
                f"{JOBS}/{job_id}", body, content_type="application/json", **headers
            )
            if response.status_code != 200:
                raise SystemExit(f"PATCH jobs: {response.status_code} {response.content[:200]}")
            return response.headers["ETag"]

        def with_if_match() -> None:
            etag[0] = api(guarded, {"HTTP_IF_MATCH": etag[0]})

        raw, connection = raw_update(vendor, user.pk, by_hand)
        variants = {
            "PATCH jobs/{id}, full answer": lambda: api(plain, {}),
            "PATCH jobs/{id}, with If-Match": with_if_match,
            "raw transaction": raw,
            "GET jobs/{id}, full answer (no update)": lambda: client.get(f"{JOBS}/{read}"),
        }
        each = interleaved(variants, args.requests, args.rounds)
        connection.close()
        done = args.requests // args.rounds * args.rounds
        title = f"PATCH jobs/{{id}} on {vendor}, {done:,} updates each, in-process, interleaved"
        print_against(title, each, "raw transaction", ("PATCH jobs/{id}, full answer", GOAL))


if __name__ == "__main__":
    main()
