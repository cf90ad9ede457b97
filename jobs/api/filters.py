import django_filters

from jobs.models import Job, LifeCycleState


class JobFilter(django_filters.FilterSet):
    life_cycle_state = django_filters.ChoiceFilter(choices=LifeCycleState.choices)
    type = django_filters.NumberFilter(field_name="type_id", help_text="job type id")
    status = django_filters.NumberFilter(field_name="status_id", help_text="job status id")
    assigned_user = django_filters.NumberFilter(
        field_name="assigned_to__user_id", help_text="id of the user the job is assigned to"
    )
    number = django_filters.CharFilter(help_text="job number, e.g. JB00019")

    class Meta:
        model = Job
        fields = ["life_cycle_state", "type", "status", "assigned_user", "number"]
