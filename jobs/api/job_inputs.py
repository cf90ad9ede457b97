"""What a create or an update may send: a job's own fields (jobs.api.intake, jobs.api.updates),
declared as `jobs.api.inputs` declares every body."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from jobs.api.inputs import (
    Body,
    ByIdentifier,
    CatalogIdentifierField,
    FieldsSetField,
    ParsedField,
    TokenBody,
    identifier_schema,
)
from jobs.api.schema import OptionalText, TextField
from jobs.exceptions import InvalidParameter
from jobs.identifiers import GROUP_IDENTIFIER_FIELDS, USER_IDENTIFIER_FIELDS, parse_identifier

# --- creates: POST jobs (ours) and POST jobs/generic_purpose/create (CRM.COM's) ----------------


class _RowIdentifierField(ParsedField):
    """A user or group named by one of `identifier_fields`; null where the field may be cleared."""

    identifier_fields: tuple[str, ...] = ()

    def to_internal_value(self, data: Any) -> dict[str, Any] | None:
        if data is None and self.allow_null:
            return None
        return parse_identifier(data, fields=self.identifier_fields, parameter=self.field_name)


@extend_schema_field({**identifier_schema(USER_IDENTIFIER_FIELDS), "nullable": True})
class UserIdentifierField(_RowIdentifierField):
    identifier_fields = USER_IDENTIFIER_FIELDS


@extend_schema_field({**identifier_schema(GROUP_IDENTIFIER_FIELDS), "nullable": True})
class GroupIdentifierField(_RowIdentifierField):
    identifier_fields = GROUP_IDENTIFIER_FIELDS


class Text(OptionalText):
    """Text that may be empty, taken only as text (DRF's own would turn a number into text)."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class AssignedToInput(Body):
    user_identifier = UserIdentifierField(required=False, allow_null=True)
    unit_identifier = GroupIdentifierField(required=False, allow_null=True)


class CreateInput(TokenBody):
    type_identifier = CatalogIdentifierField()
    status_identifier = CatalogIdentifierField(
        required=False,
        help_text="DRAFT or PENDING, allowed for the type; default: the type's "
        "default status on create",
    )
    description = Text(required=False, allow_blank=True)
    notes = Text(required=False, allow_blank=True)
    scheduled_date = serializers.DateTimeField(required=False, allow_null=True)
    assigned_to = AssignedToInput(
        required=False, allow_null=True, help_text="a user, a unit, or both"
    )
    owned_by_group_identifier = GroupIdentifierField(
        required=False,
        allow_null=True,
        help_text="default: the creator's group, when they are in exactly one",
    )
    external_reference = TextField(
        required=False, allow_null=True, max_length=100, help_text="unique when set"
    )
    fields_set = FieldsSetField(required=False)


# --- updates: PATCH jobs/{id} (ours) and POST jobs/generic_purpose/update (CRM.COM's) -----------


class StatusChangeField(CatalogIdentifierField):
    """The status an update moves the job to: it may be left out, never cleared."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if data is None:
            raise InvalidParameter(
                f"{self.field_name} cannot be empty: a job always has a status.",
                f"Leave {self.field_name} out to keep the job's status, or name one.",
            )
        return super().to_internal_value(data)


class UpdateInput(TokenBody):
    """The body of PATCH jobs/{id}: a field left out is left as it is; null clears it."""

    # As for a transition: a job_identifier sent anyway must name the path's job.
    tolerated = ("job_identifier",)
    description = Text(required=False, allow_blank=True, allow_null=True)
    notes = Text(required=False, allow_blank=True, allow_null=True)
    scheduled_date = serializers.DateTimeField(required=False, allow_null=True)
    assigned_to = AssignedToInput(
        required=False,
        allow_null=True,
        help_text="the whole new assignment: a user, a unit, or both; null: none",
    )
    owned_by_group_identifier = GroupIdentifierField(
        required=False, allow_null=True, help_text="the group that is to own the job; null: none"
    )
    external_reference = TextField(
        required=False, allow_null=True, max_length=100, help_text="unique when set"
    )
    status_identifier = StatusChangeField(
        required=False,
        help_text="a status of the job's state that its type's sequence allows next",
    )
    fields_set = FieldsSetField(required=False)


class UpdateByIdentifierInput(ByIdentifier, UpdateInput):
    """The body of POST jobs/generic_purpose/update: the job named in it."""

    tolerated = ()
