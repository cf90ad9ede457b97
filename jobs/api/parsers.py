"""JSON bodies as the API takes them: malformed, too deep or too large, each is the client's error
with its code, never a 500."""

from __future__ import annotations

import json
from typing import Any

from rest_framework.parsers import JSONParser

from jobs.exceptions import InvalidParameter

# Deeper than any body the API documents (an identifier object is two levels), with room to spare;
# far below the depth at which Python's decoder would run out of stack.
MAX_JSON_DEPTH = 32


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, refusing bodies nested beyond MAX_JSON_DEPTH (a body nested 100,000
    arrays deep made the decoder raise RecursionError, a 500)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise too_deep() from None
        if depth(data) > MAX_JSON_DEPTH:
            raise too_deep()
        try:
            # JSON may spell a lone surrogate ("\ud800"), which is no character: nothing can
            # encode it, so any text built from it would fail later, far from here.
            json.dumps(data, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise InvalidParameter(
                "The body holds text that is not valid Unicode (a lone surrogate).",
                "Send the body as UTF-8 text.",
            ) from None
        return data


def too_deep() -> InvalidParameter:
    return InvalidParameter(
        f"The body is nested more than {MAX_JSON_DEPTH} levels deep.",
        "Send a JSON object as the endpoint documents it.",
    )


def depth(value: Any) -> int:
    """How deeply JSON containers nest in `value`, walked without recursion."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        pending.extend((child, level + 1) for child in children)
    return deepest
