"""The shape of every answer under the API root: CRM.COM's envelope. Nothing but the shape, so
the middleware that answers before the API runs (jobs.observability) can use it too."""

from __future__ import annotations

from typing import Any


def envelope(
    data: Any = None, code: str = "OK", message: str = "", description: str = "", **beside: Any
) -> dict[str, Any]:
    return {
        "status": {"code": code, "message": message, "description": description},
        "data": data,
        **beside,
    }
