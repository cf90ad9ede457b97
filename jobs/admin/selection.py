"""The jobs an admin action was given, frozen for a background run: the changelist's filter when
"select all" was ticked and every filter has a name in `GET jobs`, else the jobs' ids."""

from __future__ import annotations

from django.contrib.admin.views.main import ALL_VAR, ORDER_VAR, PAGE_VAR, SEARCH_VAR
from django.db.models import QuerySet
from django.http import HttpRequest

from jobs.models import Job
from jobs.services import Selection

# The changelist's filters, as the names of `GET jobs` (jobs.filters), for a run to re-read.
CHANGELIST_FILTERS = {
    "life_cycle_state__exact": "life_cycle_state",
    "type__id__exact": "type",
    "status__id__exact": "status",
    "assigned_to__user__id__exact": "assigned_user",
    "owned_by_group__id__exact": "owned_by_group",
    "overdue": "overdue",
    SEARCH_VAR: "search",
}
# What the changelist's address carries besides filters: its order and page.
NOT_FILTERS = {ORDER_VAR, PAGE_VAR, ALL_VAR}


def frozen_selection(request: HttpRequest, queryset: QuerySet[Job]) -> Selection:
    """The jobs an action was given, frozen for a run: the changelist's filter when every
    "select all" filter has a name in `GET jobs`; else their ids."""
    selected_all = request.POST.get("select_across") == "1"
    given = {name: request.GET.getlist(name) for name in request.GET} if selected_all else None
    if given is not None and all(
        name in NOT_FILTERS or (name in CHANGELIST_FILTERS and len(values) == 1)
        for name, values in given.items()
    ):
        return Selection.of_filter(
            {
                CHANGELIST_FILTERS[name]: values[0]
                for name, values in given.items()
                if name in CHANGELIST_FILTERS
            }
        )
    return Selection.of_ids(queryset.values_list("pk", flat=True))
