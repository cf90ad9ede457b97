"""OPTIONS: the methods an address takes, in the envelope (the OpenAPI document says the rest)."""

from __future__ import annotations

from typing import Any

from rest_framework.metadata import BaseMetadata
from rest_framework.request import Request

from jobs.contract import envelope


class AllowedMethods(BaseMetadata):
    def determine_metadata(self, request: Request, view: Any) -> dict[str, Any]:
        return envelope({"allowed_methods": list(view.allowed_methods)})
