"""CRM.COM paging: `number_of_results` and `offset`, with a `paging` object beside the data."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response

from jobs.api.envelope import envelope
from jobs.exceptions import InvalidParameter
from jobs.identifiers import is_number


def _whole_number(request: Request, name: str, default: int, low: int, high: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    bounds = f"from {low} to {high}" if high is not None else f"{low} or more"
    if not is_number(raw.strip()) or int(raw) < low or (high is not None and int(raw) > high):
        raise InvalidParameter(
            f"{name} must be a whole number {bounds}, not {raw[:20]!r}.",
            f"Send {name} as a whole number {bounds}.",
        )
    return int(raw)


class CrmPagination(BasePagination):
    default_limit = 50
    max_limit = 500
    # Far past any real list, and well inside what OFFSET can hold in every database.
    max_offset = 2**31 - 1

    def paginate_queryset(self, queryset: QuerySet, request: Request, view: Any = None) -> list:
        self.limit = _whole_number(
            request, "number_of_results", self.default_limit, 1, self.max_limit
        )
        self.offset = _whole_number(request, "offset", 0, 0, self.max_offset)
        self.total = queryset.count()
        return list(queryset[self.offset : self.offset + self.limit])

    def get_paginated_response(self, data: list) -> Response:
        paging = {"total": self.total, "offset": self.offset, "count": len(data)}
        return Response(envelope(data, paging=paging))

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return {
            "type": "object",
            "required": ["status", "data", "paging"],
            "properties": {
                "status": {"$ref": "#/components/schemas/Status"},
                "data": schema,
                "paging": {
                    "type": "object",
                    "required": ["total", "offset", "count"],
                    "properties": {
                        "total": {"type": "integer", "description": "jobs matching the filters"},
                        "offset": {"type": "integer"},
                        "count": {"type": "integer", "description": "jobs in this page"},
                    },
                },
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict]:
        return [
            {
                "name": "number_of_results",
                "in": "query",
                "required": False,
                "description": f"Page size, 1 to {self.max_limit} (default {self.default_limit}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_limit},
            },
            {
                "name": "offset",
                "in": "query",
                "required": False,
                "description": "How many jobs to skip (default 0).",
                "schema": {"type": "integer", "minimum": 0, "maximum": self.max_offset},
            },
        ]
