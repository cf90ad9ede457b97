"""Who may do what: Django's model permissions, with a user's own and their groups' read in one
query, or taken from what the API's authentication already read with the user."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Concat

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


def _names(permissions: QuerySet[Permission]) -> set[str]:
    named = permissions.order_by().annotate(
        full_name=Concat(F("content_type__app_label"), Value("."), F("codename"))
    )
    return set(named.values_list("full_name", flat=True))


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
            loaded = _names(permissions)
            setattr(user_obj, LOADED, loaded)
        return set(loaded)
