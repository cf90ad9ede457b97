import pytest

from tests.factories import UserFactory


@pytest.fixture
def dispatcher(db):
    """May view and start jobs."""
    return UserFactory(username="dispatcher", permissions=["view_job", "start_progress_job"])


@pytest.fixture
def viewer(db):
    """May only look at jobs."""
    return UserFactory(username="viewer", permissions=["view_job"])


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # PBKDF2 is slow on purpose; tests hash a password for every user they make.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
