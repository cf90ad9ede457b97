from django.urls import re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from jobs.api import feed, runs, tokens, views


class OptionalSlashRouter(SimpleRouter):
    """CRM.COM clients call `jobs/all_scopes/start_progress` with or without a final slash."""

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("jobs", views.JobViewSet, basename="job")
router.register("transition_runs", runs.TransitionRunViewSet, basename="transition-run")

urlpatterns = [
    re_path(r"^authentication/token/?$", tokens.TokenView.as_view(), name="token"),
    re_path(
        r"^authentication/token/release/?$", tokens.TokenReleaseView.as_view(), name="token-release"
    ),
    re_path(r"^events/?$", feed.EventFeedView.as_view(), name="events"),
    re_path(r"^schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    *router.urls,
    re_path(r"", views.EndpointNotFound.as_view()),
]
