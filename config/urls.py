from django.contrib import admin
from django.urls import include, path, re_path

from jobs.api.views import EndpointNotFound

urlpatterns = [
    path("admin/", admin.site.urls),
    # The root without its slash: the envelope, not Django's slash-appending redirect (which
    # cannot redirect a POST and answers 500 in DEBUG).
    re_path(r"^crmapi/rest/v2$", EndpointNotFound.as_view()),
    path("crmapi/rest/v2/", include("jobs.api.urls")),
]
