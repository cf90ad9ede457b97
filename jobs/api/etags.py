"""Optimistic concurrency (ours): every answer that carries one job carries its `ETag`, and an
update sent with `If-Match` changes the job only if that tag is still its own.

The tag names the job and its version (`"19.4"`: job 19, written four times), which every write
counts in the statement that makes it (jobs.sql.writes): it is the same whatever `fields_set`
shows, and changes with any change to the job, through any door.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request
from rest_framework.response import Response

from jobs.api.envelope import envelope
from jobs.api.serializers import JobAnswer
from jobs.exceptions import InvalidParameter
from jobs.models import Job

# RFC 9110's entity-tag: an optional weak prefix, then visible characters but the quote in quotes.
ENTITY_TAG = re.compile(r'\s*(W/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*(,|$)')


IF_MATCH = OpenApiParameter(
    "If-Match",
    str,
    OpenApiParameter.HEADER,
    description="(ours) the job's ETag as last read: the job is changed only if it has not "
    "changed since (else PRECONDITION_FAILED, 412)",
)
# What a job is read with for its ETag, whatever else its answer shows.
ETAG_COLUMNS = ("id", "version")


def etag(job: Job) -> str:
    return f'"{job.pk}.{job.version}"'


def job_response(answer: JobAnswer, job: Job, status: int = 200) -> Response:
    """The envelope of one job as `answer` shows it, with the job's ETag."""
    return Response(envelope(answer.render(job)), status=status, headers={"ETag": etag(job)})


def precondition(request: Request) -> Callable[[Job], bool] | None:
    """The request's `If-Match` as a test of the job it names, as locked: None when it sent none
    (or `*`, which any job that exists passes). A weak tag never matches (RFC 9110: If-Match
    compares strongly)."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    tags, at = set(), 0
    while at < len(header):
        match = ENTITY_TAG.match(header, at)
        if match is None or match.end() == at:
            raise InvalidParameter(
                "If-Match is not a list of entity tags.",
                'Send the ETag of the job as it was answered, quotes included: If-Match: "19.4".',
            )
        if match.group(1) is None:
            tags.add(f'"{match.group(2)}"')
        at = match.end()
    return lambda job: etag(job) in tags
