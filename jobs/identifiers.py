"""CRM.COM identifier objects (`{"number": "JB00019"}`, `{"alternative_code": "ONSITE"}`):
exactly one field naming one row."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobs.exceptions import InvalidIdentifier

# Ids are BigAutoField: a larger number cannot name a row, and the database driver would overflow.
MAX_ID = 2**63 - 1
JOB_IDENTIFIER_FIELDS = ("id", "number")
# Statuses, types and cancellation reasons are all named the same ways.
CATALOG_IDENTIFIER_FIELDS = ("id", "name", "alternative_code")
STATUS_IDENTIFIER_FIELDS = CATALOG_IDENTIFIER_FIELDS
USER_IDENTIFIER_FIELDS = ("id", "username")
GROUP_IDENTIFIER_FIELDS = ("id", "name")


def is_number(text: str) -> bool:
    """Whether `text` is a whole number written in ASCII digits: str.isdigit() also takes "²",
    which int() refuses, and "١٩٨", which int() reads as 198."""
    return text.isascii() and text.isdigit()


def id_in_range(raw: str) -> int | None:
    """An id from a path (digits, as its route takes them), or None past the id column's range,
    where no row can have it."""
    value = int(raw)
    return value if 1 <= value <= MAX_ID else None


def parse_identifier(value: Any, *, fields: tuple[str, ...], parameter: str) -> dict[str, Any]:
    """Validate a CRM.COM identifier object: exactly one of `fields`, with a usable value."""
    allowed = ", ".join(fields)
    if not isinstance(value, Mapping):
        raise InvalidIdentifier(
            f"{parameter} must be an object.",
            f"Send {parameter} as an object with exactly one of: {allowed}.",
        )
    if len(value) != 1:
        raise InvalidIdentifier(
            f"{parameter} must have exactly one field, not {len(value)}.",
            f"Send {parameter} with exactly one of: {allowed}.",
        )
    ((key, raw),) = value.items()
    if key not in fields:
        raise InvalidIdentifier(
            f"{parameter} has an unknown field {str(key)[:50]!r}.",
            f"Use exactly one of: {allowed}.",
        )
    if key == "id":
        if (
            isinstance(raw, bool)
            or not isinstance(raw, int | str)
            or not is_number(str(raw))
            or not 1 <= int(raw) <= MAX_ID
        ):
            raise InvalidIdentifier(
                f"{parameter}.id must be a whole number from 1 to {MAX_ID}.",
                "Send the id as a number.",
            )
        return {"id": int(raw)}
    # NUL can name nothing, and PostgreSQL refuses it in a query. Blank text is allowed: like any
    # other text that names nothing, it finds nothing.
    if not isinstance(raw, str) or not raw:
        raise InvalidIdentifier(
            f"{parameter}.{key} must be a non-empty string.", f"Send {key} as a string."
        )
    if "\x00" in raw:
        raise InvalidIdentifier(
            f"{parameter}.{key} holds a NUL character, which no {key} can contain.",
            f"Send {key} without it.",
        )
    return {key: raw}
