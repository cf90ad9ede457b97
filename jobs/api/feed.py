"""GET events: the event feed (ours), read by cursor."""

from __future__ import annotations

import re

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs.api.envelope import envelope
from jobs.api.schema import StatusSerializer, errors
from jobs.api.serializers import EventSerializer
from jobs.api.views import JobPermission
from jobs.events import CURSOR_PATTERN, EVENT_TYPES, Cursor, as_json, events_after, parse_types
from jobs.exceptions import InvalidParameter
from jobs.identifiers import is_number
from jobs.visibility import events_seen_by

TYPES = "|".join(re.escape(name) for name in EVENT_TYPES)


class EventFeedView(APIView):
    """Every transition of every job the reader sees, and the end of their runs, oldest first; a
    client keeps `paging.after` and asks for what came after it (jobs.events says why it never
    misses one or sees one twice)."""

    permission_classes = [IsAuthenticated, JobPermission]

    @extend_schema(
        summary="Events, oldest first (ours)",
        parameters=[
            OpenApiParameter(
                "after",
                {"type": "string", "pattern": CURSOR_PATTERN},
                description="paging.after of the previous answer; absent: from the oldest event",
            ),
            OpenApiParameter(
                "types",
                {"type": "string", "pattern": rf"^({TYPES})(,({TYPES}))*$"},
                description=f"comma-separated, some of: {', '.join(EVENT_TYPES)}; absent: all",
            ),
            OpenApiParameter(
                "number_of_results",
                {"type": "integer", "minimum": 1, "maximum": 500, "default": 100},
            ),
        ],
        responses={
            200: inline_serializer(
                "EventFeedEnvelope",
                {
                    "status": StatusSerializer(),
                    "data": EventSerializer(many=True),
                    "paging": inline_serializer(
                        "EventFeedPaging",
                        {
                            "after": serializers.CharField(
                                allow_null=True, help_text="send it as after to go on"
                            ),
                            "count": serializers.IntegerField(),
                        },
                    ),
                },
            ),
            **errors(
                "AUTHENTICATION_FAILED", "PERMISSION_DENIED", "INVALID_PARAMETER", "EVENT_NOT_FOUND"
            ),
        },
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        raw_limit = params.get("number_of_results", "100")
        if not is_number(raw_limit) or not 1 <= int(raw_limit) <= 500:
            raise InvalidParameter(
                "number_of_results must be a whole number from 1 to 500.",
                "Correct the parameter and retry.",
            )
        after = Cursor.parse(params["after"]) if "after" in params else None
        types = parse_types(params.get("types"))
        events = events_after(
            after, types=types, limit=int(raw_limit), seen=events_seen_by(request.user)
        )
        last = Cursor.of(events[-1]) if events else after
        return Response(
            envelope(
                [as_json(event) for event in events],
                paging={"after": str(last) if last else None, "count": len(events)},
            )
        )
