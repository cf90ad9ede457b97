import pytest

from tests.factories import UserFactory

# Real Celery workers and beat, for the tests that need them (the `celery_on_redis` fixture).
pytest_plugins = ["tests.workers"]


@pytest.fixture
def dispatcher(db):
    """May view every job and run every transition: submit, start, complete, cancel (the
    tests of who sees which job make their own users: tests/test_visibility.py)."""
    return UserFactory(
        username="dispatcher",
        is_staff=True,
        permissions=[
            "view_job",
            "view_all_jobs",
            "submit_job",
            "start_progress_job",
            "complete_job",
            "cancel_job",
        ],
    )


@pytest.fixture
def technician(db):
    """May view every job, start and complete jobs, but not cancel them."""
    return UserFactory(
        username="technician",
        is_staff=True,
        permissions=["view_job", "view_all_jobs", "start_progress_job", "complete_job"],
    )


@pytest.fixture
def viewer(db):
    """May only look at jobs (every job)."""
    return UserFactory(username="viewer", is_staff=True, permissions=["view_job", "view_all_jobs"])


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # PBKDF2 is slow on purpose; tests hash a password for every user they make.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fresh_throttle_counts():
    # Login throttling counts in the cache, which outlives a test.
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def token_for():
    from rest_framework_simplejwt.tokens import SlidingToken

    return lambda user: str(SlidingToken.for_user(user))


@pytest.fixture
def as_dispatcher(api, dispatcher, token_for):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(dispatcher)}")
    return api


@pytest.fixture
def as_technician(api, technician, token_for):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(technician)}")
    return api


@pytest.fixture
def as_viewer(api, viewer, token_for):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(viewer)}")
    return api


@pytest.fixture
def unchanged(db):
    """Call it after building the test data; it checks at teardown that nothing has moved."""
    from jobs.models import Job, JobTransitionLog

    columns = [field.attname for field in Job._meta.concrete_fields]

    def state():
        return (
            list(Job.objects.order_by("pk").values_list(*columns)),
            JobTransitionLog.objects.count(),
        )

    taken = []

    def snapshot():
        taken.append(state())

    yield snapshot
    if taken:
        assert state() == taken[0], "the database changed"


@pytest.fixture(autouse=True, scope="session")
def broker_in_memory():
    """Messages sent by tests stay in this process; tests with a real worker set their own."""
    from config.celery import app

    app.conf.broker_url = "memory://"
    app.conf.broker_transport_options = {}
