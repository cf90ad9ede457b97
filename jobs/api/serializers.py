"""How a job looks in the API, and the sparse fieldsets that shape both the JSON and the query.

A `fields_set` selection is a tree: `{"id": None, "status": {"name": None}}` means the job's id and
its status's name; `None` means the whole field. `SparseSerializer.prune` drops what was not
asked for, and `load_plan` reads the pruned serializer to tell the queryset which columns to load
and which relations to join, so the database only sends what the client asked for.
"""

from __future__ import annotations

import copy
import re
from functools import cache, lru_cache
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from jobs.api.schema import enveloped
from jobs.events import EVENT_TYPES
from jobs.exceptions import InvalidParameter
from jobs.models import Channel, FulfillmentScope, Job, LifeCycleState, RatingState
from jobs.transitions import TRANSITIONS

FieldsTree = dict[str, "FieldsTree | None"]


@extend_schema_field({"type": "string"})
class ComputedField(serializers.ReadOnlyField):
    """A text computed from other columns (`columns` names them, for the query plan)."""

    def __init__(self, *, columns: tuple[str, ...], **kwargs: Any) -> None:
        self.columns = columns
        super().__init__(**kwargs)


class SparseSerializer(serializers.Serializer):
    _selection: FieldsTree | None = None

    def __init__(self, *args: Any, selection: FieldsTree | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if selection is not None:
            self.prune(selection)

    def get_fields(self) -> dict[str, serializers.Field]:
        # Only the fields selected are built: DRF deep-copies every declared field otherwise.
        declared = self._declared_fields
        if self._selection is not None:
            declared = {name: f for name, f in declared.items() if name in self._selection}
        fields = copy.deepcopy(declared)
        for field in fields.values():
            field.required = False  # fields_set may leave any field out of an answer
        return fields

    def prune(self, selection: FieldsTree) -> None:
        self._selection = selection  # read by get_fields, if the fields are not built yet
        for name in list(self.fields):
            if name not in selection:
                del self.fields[name]
            elif selection[name] is not None:
                self.fields[name].prune(selection[name])


class UserSerializer(SparseSerializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    person_name = ComputedField(source="get_full_name", columns=("first_name", "last_name"))
    email = serializers.CharField()


class UnitSerializer(SparseSerializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class AssignmentSerializer(SparseSerializer):
    user = UserSerializer(allow_null=True)
    unit = UnitSerializer(allow_null=True)

    def get_attribute(self, instance: Any) -> Any:
        # A job moved by the service comes with its assignment, or the news that it has none
        # (jobs.sql.lock.lock_job), which reading `assigned_to` would ask the database for again.
        if hasattr(instance, "assigned_to_loaded"):
            return instance.assigned_to_loaded
        return super().get_attribute(instance)


class CatalogEntrySerializer(SparseSerializer):
    """What job types and statuses have in common, as CRM.COM names them."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    alternative_code = serializers.CharField()
    description = serializers.CharField()


class JobTypeSerializer(CatalogEntrySerializer):
    fulfillment_scope = serializers.ChoiceField(choices=FulfillmentScope.choices)


class JobStatusSerializer(CatalogEntrySerializer):
    life_cycle_state = serializers.ChoiceField(choices=LifeCycleState.choices)


class TypeStatusSerializer(serializers.Serializer):
    """One entry of GET jobs/configuration/statuses/list: a status the type allows."""

    id = serializers.IntegerField(help_text="the id of this type-and-status pairing")
    default = serializers.BooleanField(
        help_text="whether the type enters this status by default in its state"
    )
    status = JobStatusSerializer()


class LogInformationSerializer(SparseSerializer):
    created_date = serializers.DateTimeField()
    created_by_user = serializers.CharField(
        source="created_by_user.username", allow_null=True, help_text="username"
    )
    updated_date = serializers.DateTimeField()
    updated_by_user = serializers.CharField(
        source="updated_by_user.username", allow_null=True, help_text="username"
    )


class JobSerializer(SparseSerializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    description = serializers.CharField()
    notes = serializers.CharField()
    external_reference = serializers.CharField(
        allow_null=True, help_text="(ours) the id another system knows the job by"
    )
    life_cycle_state = serializers.ChoiceField(choices=LifeCycleState.choices)
    rating_state = serializers.ChoiceField(choices=RatingState.choices)
    expiration_date = serializers.DateTimeField(allow_null=True)
    scheduled_date = serializers.DateTimeField(allow_null=True)
    assigned_to = AssignmentSerializer(allow_null=True)
    owned_by_group = UnitSerializer(
        allow_null=True, help_text="the unit whose users see and move the job"
    )
    type = JobTypeSerializer()
    status = JobStatusSerializer()
    cancellation_reason = CatalogEntrySerializer(allow_null=True)
    actual_start_date = serializers.DateTimeField(allow_null=True)
    actual_completed_date = serializers.DateTimeField(allow_null=True)
    log_information = LogInformationSerializer(source="*")


JOB_ENVELOPE = enveloped(JobSerializer(), "JobEnvelope")


class ReferenceSerializer(serializers.Serializer):
    """A status or reason as the history and the events name it."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    alternative_code = serializers.CharField()


class UserReferenceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class RunReferenceSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="GET transition_runs/{id}")


class TransitionLogSerializer(serializers.Serializer):
    """One transition of GET jobs/{id}/history (ours)."""

    id = serializers.IntegerField()
    transition = serializers.ChoiceField(choices=list(TRANSITIONS))
    from_state = serializers.ChoiceField(choices=LifeCycleState.choices)
    to_state = serializers.ChoiceField(choices=LifeCycleState.choices)
    from_status = ReferenceSerializer(allow_null=True)
    to_status = ReferenceSerializer(allow_null=True)
    cancellation_reason = ReferenceSerializer(allow_null=True)
    user = UserReferenceSerializer(allow_null=True, help_text="who moved it")
    date = serializers.DateTimeField(source="created_at")
    channel = serializers.ChoiceField(choices=Channel.choices)
    run = serializers.SerializerMethodField(
        help_text="the background run that moved it, or null for one moved by itself"
    )

    def get_run(self, entry: Any) -> dict[str, int] | None:
        return None if entry.run_id is None else {"id": entry.run_id}


def _names(serializer: serializers.Serializer, prefix: str = "") -> list[str]:
    names = []
    for name, field in serializer.fields.items():
        names.append(prefix + name)
        if isinstance(field, serializers.Serializer):
            names.extend(_names(field, f"{prefix}{name}."))
    return names


@cache
def allowed_names() -> tuple[str, ...]:
    """Every name `fields_set` accepts: top-level fields and dotted paths into nested ones."""
    return tuple(_names(JobSerializer()))


def parse_fields_set(raw: Any) -> FieldsTree | None:
    """`fields_set` (a comma-separated string or a list of names) as a selection tree; None for
    every field. Spaces and repeats are forgiven; an empty or unknown name is not."""
    if raw is None:
        return None
    if isinstance(raw, str):
        names = raw.split(",")
    elif isinstance(raw, list) and all(isinstance(name, str) for name in raw):
        names = raw
    else:
        raise InvalidParameter(
            "fields_set must be a comma-separated string or a list of field names.",
            f"Allowed names: {', '.join(allowed_names())}.",
        )
    names = [name.strip() for name in names if name.strip()]
    if not names:
        raise InvalidParameter(
            "fields_set is empty.",
            f"Omit fields_set for every field, or name some of: {', '.join(allowed_names())}.",
        )
    known = set(allowed_names())
    unknown = [name for name in names if name not in known]
    if unknown:
        raise InvalidParameter(
            f"fields_set names unknown fields: {', '.join(map(repr, unknown))[:200]}.",
            f"Allowed names: {', '.join(allowed_names())}.",
        )
    selection: FieldsTree = {}
    for name in names:
        _select(selection, name.split("."))
    return selection


def _select(tree: FieldsTree, parts: list[str]) -> None:
    head, rest = parts[0], parts[1:]
    if not rest:
        tree[head] = None  # the whole field, whatever was selected inside it before
        return
    if head in tree and tree[head] is None:
        return  # already whole
    subtree = tree.setdefault(head, {})
    _select(subtree, rest)


def load_plan(serializer: serializers.Serializer, prefix: str = "") -> tuple[set[str], set[str]]:
    """The ORM columns a (pruned) serializer reads, and the relations it must join to read them."""
    columns: set[str] = set()
    relations: set[str] = set()
    for field in serializer.fields.values():
        if field.source == "*":  # another view of the same row
            sub_columns, sub_relations = load_plan(field, prefix)
        elif isinstance(field, serializers.Serializer):
            path = prefix + "__".join(field.source_attrs)
            relations.add(path)
            sub_columns, sub_relations = load_plan(field, f"{path}__")
        else:
            names = getattr(field, "columns", None) or ("__".join(field.source_attrs),)
            sub_columns = {prefix + name for name in names}
            sub_relations = {prefix + name.rsplit("__", 1)[0] for name in names if "__" in name}
        columns |= sub_columns
        relations |= sub_relations
    return columns, relations


class JobAnswer:
    """A job as one `fields_set` selection shows it: the serializer, built and pruned once, and
    what it reads (`columns`, ORM paths; `relations`, the joins they need).

    Answers are kept per selection (see `job_answer`): building the serializer took longer than
    rendering a job with it. Rendering only reads the serializer, so threads may share it.
    """

    def __init__(self, selection: FieldsTree | None) -> None:
        self._serializer = JobSerializer(selection=selection)
        columns, relations = load_plan(self._serializer)
        self.columns = tuple(sorted(columns))
        self.relations = tuple(sorted(relations))

    def render(self, job: Job) -> dict[str, Any]:
        return self._serializer.to_representation(job)

    def shape(self, jobs: QuerySet[Job], *, also: tuple[str, ...] = ()) -> QuerySet[Job]:
        """`jobs`, loading only what this answer renders (and always the state, which django-fsm
        reads, and the columns named in `also`)."""
        if self.relations:  # select_related() with no names would join every non-null key
            jobs = jobs.select_related(*self.relations)
        return jobs.only("id", "life_cycle_state", *also, *self.columns)


def job_answer(selection: FieldsTree | None) -> JobAnswer:
    return _job_answer(_frozen(selection))


def _frozen(selection: FieldsTree | None) -> Any:
    if selection is None:
        return None
    return tuple(sorted((name, _frozen(inner)) for name, inner in selection.items()))


def _thawed(frozen: Any) -> FieldsTree | None:
    return None if frozen is None else {name: _thawed(inner) for name, inner in frozen}


@lru_cache(maxsize=256)  # selections are the client's to choose: keep a bounded few
def _job_answer(frozen: Any) -> JobAnswer:
    return JobAnswer(_thawed(frozen))


def fields_set_schema() -> dict[str, Any]:
    """`fields_set` exactly as parse_fields_set accepts it, for the OpenAPI document."""
    name = "(" + "|".join(re.escape(n) for n in allowed_names()) + ")"
    return {
        "type": "string",
        "pattern": rf"^[ ,]*{name}[ ]*(,[ ,]*{name}[ ]*)*[ ,]*$",
        "example": "id,number,status.name",
        "description": "Comma-separated field names; a dotted name picks a nested field. "
        f"Allowed: {', '.join(allowed_names())}. Absent: every field.",
    }


class EventSerializer(serializers.Serializer):
    """One event of GET events (ours)."""

    id = serializers.CharField(help_text="evt_…: unique, the same on every delivery")
    type = serializers.ChoiceField(choices=EVENT_TYPES)
    timestamp = serializers.DateTimeField(help_text="when the transition's batch ran, UTC")
    data = serializers.JSONField(
        help_text="job {id, number, type {id, alternative_code}}, from_state, to_state, "
        "from_status and to_status {id, name, alternative_code}, user {id, username}, channel, "
        "and each extra parameter the transition takes (job.cancelled: cancellation_reason)"
    )
