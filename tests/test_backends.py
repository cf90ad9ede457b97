"""jobs.backends: Django's model permissions, a user's own and their groups' read together."""

import pytest
from django.contrib.auth.models import Permission

from jobs.visibility import sight_of
from tests.factories import GroupFactory, UserFactory
from tests.helpers import count_queries

pytestmark = pytest.mark.django_db


def jobs_permission(codename):
    return Permission.objects.get(content_type__app_label="jobs", codename=codename)


def test_a_user_has_their_own_permissions_and_their_groups_read_in_one_query():
    group = GroupFactory(name="dispatch")
    group.permissions.add(jobs_permission("cancel_job"))
    user = UserFactory(permissions=["view_job"])
    user.groups.add(group)

    with count_queries() as queries:
        assert user.has_perm("jobs.view_job")
        assert user.has_perm("jobs.cancel_job")
        assert not user.has_perm("jobs.complete_job")
        assert user.has_module_perms("jobs")

    assert len(queries) == 1
    assert user.get_all_permissions() == {"jobs.view_job", "jobs.cancel_job"}


def test_a_superuser_has_every_permission_and_an_inactive_user_none():
    superuser = UserFactory(is_superuser=True)
    inactive = UserFactory(is_active=False, permissions=["view_job"])

    assert superuser.has_perm("jobs.cancel_job")
    assert len(superuser.get_all_permissions()) == Permission.objects.count()
    assert not inactive.has_perm("jobs.view_job")
    assert inactive.get_all_permissions() == set()


def test_the_users_groups_come_with_the_permissions_for_the_visibility_rule():
    north, south = GroupFactory(name="North"), GroupFactory(name="South")
    user = UserFactory(permissions=["view_job"], groups=[north, south])

    with count_queries() as queries:
        sight = sight_of(user)

    assert len(queries) == 1  # the permissions and the groups, read together
    assert (sight.everything, sight.group_ids) == (False, tuple(sorted([north.pk, south.pk])))
