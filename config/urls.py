from django.contrib import admin
from django.urls import include, path, re_path

from jobs import health, observability
from jobs.api.views import EndpointNotFound

handler400 = "jobs.observability.bad_request"

urlpatterns = [
    re_path(r"^health/live/?$", health.live, name="health-live"),
    re_path(r"^health/ready/?$", health.ready, name="health-ready"),
    re_path(r"^metrics/?$", observability.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    # The root without its slash: the envelope, not Django's slash-appending redirect (which
    # cannot redirect a POST and answers 500 in DEBUG).
    re_path(r"^crmapi/rest/v2$", EndpointNotFound.as_view()),
    path("crmapi/rest/v2/", include("jobs.api.urls")),
]
