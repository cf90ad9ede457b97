"""Create benchmark: POST jobs (the full answer) against the raw transaction that writes the same
rows (the job with its number, and its event), side by side in one run.

    make bench        (on DATABASE_URL's PostgreSQL; SQLite otherwise)

(a) POST jobs through the whole DRF stack, with the full answer, and (b) the same with an
Idempotency-Key (a new one each time: the claim and the stored answer), against (c) the raw
transaction on the driver: INSERT the job, set its number, INSERT the event, COMMIT. Requests
are interleaved in rounds; each is printed as a ratio to (c). Goal: (a) at most 3x.
"""

from __future__ import annotations

import argparse
import json
import uuid

from common import interleaved, make_dispatcher, make_types, print_against, throwaway_database

JOBS = "/crmapi/rest/v2/jobs"
GOAL = 3.0


def raw_create(vendor: str, user_id: int, job_type):
    """The same rows by hand on the driver, outside Django: the floor a create stands on."""
    from django.db import connection
    from django.utils import timezone

    from jobs.models import new_event_id

    status = job_type.status_in["DRAFT"]
    if vendor == "postgresql":
        import psycopg

        params = connection.get_connection_params()
        raw = psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"})
        mark, data, txid, begin = "%s", "%s::jsonb", "pg_current_xact_id()::text::bigint", None
    else:
        import sqlite3

        raw = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
        mark, data, txid, begin = "?", "?", "0", "BEGIN IMMEDIATE"
    insert = (
        "INSERT INTO jobs_job (number, description, notes, type_id, status_id, life_cycle_state, "
        "rating_state, created_date, updated_date, created_by_user_id, updated_by_user_id, "
        "version) "
        f"VALUES ({mark}, {mark}, '', {mark}, {mark}, 'DRAFT', 'PENDING', {mark}, {mark}, "
        f"{mark}, {mark}, 1) RETURNING id"
    )
    number = f"UPDATE jobs_job SET number = {mark} WHERE id = {mark}"
    event = (
        "INSERT INTO jobs_event (public_id, type, timestamp, data, txid, fanned_out, job_id) "
        f"VALUES ({mark}, 'job.created', {mark}, {data}, {txid}, FALSE, {mark})"
    )

    def create() -> None:
        cursor = raw.cursor()
        if begin:
            cursor.execute(begin)
        now = timezone.now() if vendor == "postgresql" else timezone.now().isoformat()
        placeholder = f"~{uuid.uuid4().hex[:18]}"
        cursor.execute(
            insert,
            [placeholder, "Replace the router", job_type.pk, status.pk, now, now, user_id, user_id],
        )
        (job_id,) = cursor.fetchone()
        cursor.execute(number, [f"JB{job_id:05d}", job_id])
        happened = {
            "job": {"id": job_id, "number": f"JB{job_id:05d}"},
            "to_state": "DRAFT",
            "to_status": {"id": status.pk},
            "user": {"id": user_id},
            "channel": "api",
        }
        cursor.execute(event, [new_event_id(), now, json.dumps(happened), job_id])
        raw.commit() if vendor == "postgresql" else cursor.execute("COMMIT")

    return create, raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="creates per variant")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with throwaway_database() as vendor:
        from django.contrib.auth.models import Permission
        from django.test import Client
        from rest_framework_simplejwt.tokens import SlidingToken

        user = make_dispatcher()
        user.user_permissions.add(Permission.objects.get(codename="add_job"))
        (job_type,) = make_types(1)
        job_type.default_create_status = job_type.status_in["DRAFT"]
        job_type.save()
        client = Client(HTTP_AUTHORIZATION=f"Bearer {SlidingToken.for_user(user)}")
        body = {
            "type_identifier": {"id": job_type.pk},
            "description": "Replace the router",
            "owned_by_group_identifier": None,
        }
        raw, connection = raw_create(vendor, user.pk, job_type)

        def api(idempotent: bool) -> None:
            headers = {"HTTP_IDEMPOTENCY_KEY": uuid.uuid4().hex} if idempotent else {}
            response = client.post(JOBS, body, content_type="application/json", **headers)
            if response.status_code != 201:
                raise SystemExit(f"POST jobs: {response.status_code} {response.content[:200]}")

        variants = {
            "POST jobs, full answer": lambda: api(False),
            "POST jobs, with an Idempotency-Key": lambda: api(True),
            "raw transaction": raw,
        }
        each = interleaved(variants, args.requests, args.rounds)
        connection.close()
        done = args.requests // args.rounds * args.rounds
        title = f"POST jobs on {vendor}, {done:,} creates each, in-process, interleaved"
        print_against(title, each, "raw transaction", ("POST jobs, full answer", GOAL))


if __name__ == "__main__":
    main()
