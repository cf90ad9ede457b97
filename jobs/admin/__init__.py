"""The dispatchers' door: the Django admin. Every transition, one job or thousands, goes through
jobs.services by way of `transitions.TransitionAdminMixin`; the other modules configure pages:

- `jobs`: the job list and page (with its buttons, assignment and history);
- `transitions`: each declared transition's bulk action, confirmation page and button;
- `runs`: background transition runs, their progress and Stop;
- `catalog`: job statuses, types and cancellation reasons;
- `records`: the transition log and the events, read-only;
- `webhooks`: endpoints and deliveries.
"""

from django.contrib import admin

from jobs.admin import catalog, jobs, records, runs, webhooks

admin.site.site_header = "Jobs administration"
admin.site.site_title = "Jobs admin"
admin.site.index_title = "Jobs, their types and what happened to them"
# The job list needs the width: with the app list beside it, its columns were cut off at 1280
# pixels (the breadcrumbs and the home page still lead everywhere).
admin.site.enable_nav_sidebar = False

__all__ = ["catalog", "jobs", "records", "runs", "webhooks"]
