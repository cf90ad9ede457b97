import django_filters
from django import forms

from jobs.exceptions import InvalidParameter
from jobs.identifiers import MAX_ID
from jobs.models import Job, LifeCycleState


class IdFilter(django_filters.NumberFilter):
    """A row id: a whole number the id column can hold (anything else is INVALID_PARAMETER)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        super().__init__(*args, min_value=1, max_value=MAX_ID, **kwargs)


class JobFilter(django_filters.FilterSet):
    life_cycle_state = django_filters.ChoiceFilter(choices=LifeCycleState.choices)
    type = IdFilter(field_name="type_id", help_text="job type id")
    status = IdFilter(field_name="status_id", help_text="job status id")
    assigned_user = IdFilter(
        field_name="assigned_to__user_id", help_text="id of the user the job is assigned to"
    )
    number = django_filters.CharFilter(help_text="job number, e.g. JB00019")

    class Meta:
        model = Job
        fields = ["life_cycle_state", "type", "status", "assigned_user", "number"]

    def filter_queryset(self, queryset):
        # django-filter reads an empty value as "no filter" (a web-form habit); for an API client
        # an empty filter is a mistake worth saying, as the schema does.
        empty = [name for name in self.filters if self.data.get(name) == ""]
        if empty:
            raise InvalidParameter(
                f"{empty[0]} is empty.", "Leave a filter out, or give it a value."
            )
        return super().filter_queryset(queryset)
