"""Which jobs: the filter of `GET jobs`, and the frozen selection of a background run (the same
names, so a run's filter reads as the list it came from)."""

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.text import smart_split, unescape_string_literal

from jobs.exceptions import InvalidParameter
from jobs.identifiers import MAX_ID
from jobs.models import Job, LifeCycleState

# A job no longer expected to be done in time: still open, and its expiration date passed.
OPEN_STATES = (LifeCycleState.DRAFT, LifeCycleState.PENDING, LifeCycleState.IN_PROGRESS)


def overdue() -> Q:
    """Jobs not completed or cancelled whose expiration date has passed."""
    return Q(life_cycle_state__in=OPEN_STATES, expiration_date__lt=timezone.now())


class IdFilter(django_filters.NumberFilter):
    """A row id: a whole number the id column can hold (anything else is INVALID_PARAMETER)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        super().__init__(*args, min_value=1, max_value=MAX_ID, **kwargs)


def search_terms(text: str) -> list[str]:
    """The admin's search box split as Django's admin splits it: words, or "quoted phrases"."""
    terms = []
    for bit in smart_split(text):
        if bit.startswith(('"', "'")) and bit[0] == bit[-1]:
            bit = unescape_string_literal(bit)
        if bit:
            terms.append(bit)
    return terms


# Every filter of `GET jobs`, by name: its kind (an id, text, a state) and what it means. The
# filter below, the API document's query parameters and a run's `filter` schema all read it.
FILTER_DESCRIPTIONS: dict[str, tuple[str, str]] = {
    "life_cycle_state": ("state", "life cycle state"),
    "type": ("id", "job type id"),
    "status": ("id", "job status id"),
    "assigned_user": ("id", "id of the user the job is assigned to"),
    "owned_by_group": ("id", "id of the group (unit) that owns the job"),
    "external_reference": ("text", "the id another system knows the job by, exactly"),
    "overdue": ("bool", "true: not completed or cancelled, and past its expiration date"),
    "number": ("text", "job number, e.g. JB00019"),
    "search": ("text", 'every word (or "quoted phrase") in the job\'s number or description'),
}


def _described(name: str) -> str:
    return FILTER_DESCRIPTIONS[name][1]


class JobFilter(django_filters.FilterSet):
    life_cycle_state = django_filters.ChoiceFilter(
        choices=LifeCycleState.choices, help_text=_described("life_cycle_state")
    )
    type = IdFilter(field_name="type_id", help_text=_described("type"))
    status = IdFilter(field_name="status_id", help_text=_described("status"))
    assigned_user = IdFilter(
        field_name="assigned_to__user_id", help_text=_described("assigned_user")
    )
    owned_by_group = IdFilter(
        field_name="owned_by_group_id", help_text=_described("owned_by_group")
    )
    external_reference = django_filters.CharFilter(help_text=_described("external_reference"))
    overdue = django_filters.ChoiceFilter(
        choices=[("true", "true"), ("false", "false")],
        method="filter_overdue",
        help_text=_described("overdue"),
    )
    number = django_filters.CharFilter(help_text=_described("number"))
    search = django_filters.CharFilter(method="filter_search", help_text=_described("search"))

    class Meta:
        model = Job
        fields = list(FILTER_DESCRIPTIONS)

    def filter_overdue(self, queryset: QuerySet[Job], name: str, value: str) -> QuerySet[Job]:
        return queryset.filter(overdue()) if value == "true" else queryset.exclude(overdue())

    def filter_search(self, queryset: QuerySet[Job], name: str, value: str) -> QuerySet[Job]:
        for term in search_terms(value):
            queryset = queryset.filter(Q(number__icontains=term) | Q(description__icontains=term))
        return queryset

    def filter_queryset(self, queryset):
        # django-filter reads an empty value as "no filter" (a web-form habit); for an API client
        # an empty filter is a mistake worth saying, as the schema does.
        empty = [name for name in self.filters if self.data.get(name) == ""]
        if empty:
            raise InvalidParameter(
                f"{empty[0]} is empty.", "Leave a filter out, or give it a value."
            )
        return super().filter_queryset(queryset)


def filtered_jobs(filters: dict[str, str], jobs: QuerySet[Job] | None = None) -> QuerySet[Job]:
    """The jobs a filter names, or INVALID_PARAMETER naming the first bad value."""
    unknown = sorted(set(filters) - set(JobFilter.base_filters))
    if unknown:
        raise InvalidParameter(
            f"filter has no {unknown[0]}.", f"Filter by {', '.join(JobFilter.base_filters)}."
        )
    filterset = JobFilter(data=filters, queryset=Job.objects.all() if jobs is None else jobs)
    if not filterset.is_valid():
        name, problems = next(iter(filterset.errors.items()))
        raise InvalidParameter(f"filter {name}: {problems[0]}", "Correct the filter's value.")
    return filterset.qs
