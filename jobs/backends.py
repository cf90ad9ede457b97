"""Who may do what: Django's model permissions, with a user's own and their groups' read in one
query (which also reads the user's group ids, for jobs.visibility), or taken from what the API's
authentication already read with the user."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.db.models import CharField, F, Q, QuerySet, Value
from django.db.models.functions import Cast, Concat

from jobs.visibility import GROUPS_LOADED

# The attribute holding a user's permission names ("app_label.codename"), set by
# `jobs.sql.tokens.user_of_token` or on first use.
LOADED = "loaded_permissions"


def _permissions_of(user: Any) -> QuerySet[Permission]:
    own = Permission.user_set.through.objects.filter(user=user)
    # Through the user's group rows, not the groups: one join fewer to plan.
    groups = Group.user_set.through.objects.filter(user=user).values("group_id")
    of_groups = Group.permissions.through.objects.filter(group_id__in=groups)
    return Permission.objects.filter(
        Q(pk__in=own.values("permission_id")) | Q(pk__in=of_groups.values("permission_id"))
    )


# How a group id is told apart from a permission name ("app_label.codename") in one result.
GROUP_MARK = "#group:"


def _names_and_groups(permissions: QuerySet[Permission], user: Any) -> tuple[set[str], set[int]]:
    """The permission names, and the user's group ids: one query (a UNION)."""
    named = permissions.order_by().annotate(
        full_name=Concat(F("content_type__app_label"), Value("."), F("codename"))
    )
    groups = (
        Group.user_set.through.objects.filter(user=user)
        .order_by()
        .annotate(full_name=Concat(Value(GROUP_MARK), Cast("group_id", CharField())))
    )
    # Unordered: Django 6.1 orders a union by the first query's Meta.ordering otherwise, which
    # names a column the union has not.
    found = (
        named.values_list("full_name", flat=True)
        .union(groups.values_list("full_name", flat=True))
        .order_by()
    )
    names, group_ids = set(), set()
    for name in found:
        if name.startswith(GROUP_MARK):
            group_ids.add(int(name.removeprefix(GROUP_MARK)))
        else:
            names.add(name)
    return names, group_ids


class PermissionsInOneQueryBackend(ModelBackend):
    """Django's ModelBackend (same answers, once per user object), but a user's own permissions
    and their groups' are read together, or taken from the user when they came with it."""

    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        loaded = getattr(user_obj, LOADED, None)
        if loaded is None or user_obj.is_superuser:
            permissions = (
                Permission.objects.all() if user_obj.is_superuser else _permissions_of(user_obj)
            )
            loaded, group_ids = _names_and_groups(permissions, user_obj)
            setattr(user_obj, LOADED, loaded)
            setattr(user_obj, GROUPS_LOADED, frozenset(group_ids))
        return set(loaded)
