"""Who may do what: Django's model permissions, read in one query, or in the user's own."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.db.models import Expression, F, JSONField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Concat

# The annotation `with_permissions` adds to a user: a list of "app_label.codename".
LOADED = "loaded_permissions"


class _JSONListOf(Subquery):
    """A one-column subquery's values as one JSON list (an empty list when it has no rows)."""

    output_field = JSONField()

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, tuple]:
        sql, params = super().as_sql(compiler, connection, **extra)
        return f"(SELECT COALESCE(JSONB_AGG(v), '[]') FROM {sql} AS listed(v))", params

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, tuple]:
        sql, params = super().as_sql(compiler, connection, **extra)
        # SQLite names a derived table's columns from its select list, not in the alias.
        return f"(SELECT JSON_GROUP_ARRAY(listed.v) FROM {sql} AS listed)", params


def _permissions_of(user: Any, user_of_group_rows: Any = None) -> QuerySet[Permission]:
    """The user's own permissions and their groups'. For an OuterRef `user`, the group rows'
    subquery lies one level deeper and names the user with one OuterRef more."""
    own = Permission.user_set.through.objects.filter(user=user)
    # Through the user's group rows, not the groups: one join fewer halved PostgreSQL's planning,
    # which took longer than running the query.
    groups = Group.user_set.through.objects.filter(user=user_of_group_rows or user)
    groups = groups.values("group_id")
    of_groups = Group.permissions.through.objects.filter(group_id__in=groups)
    return Permission.objects.filter(
        Q(pk__in=own.values("permission_id")) | Q(pk__in=of_groups.values("permission_id"))
    )


def _names(permissions: QuerySet[Permission]) -> QuerySet[Permission]:
    return permissions.order_by().annotate(
        v=Concat(F("content_type__app_label"), Value("."), F("codename"))
    )


def with_permissions(users: QuerySet) -> QuerySet:
    """`users` with their permissions (their own and their groups'), for
    PermissionsInOneQueryBackend to read instead of querying: an API request reads its user and
    what the user may do in one query."""
    # The user is two queries out: permissions -> the user's permission rows -> the user.
    user = OuterRef(OuterRef("pk"))
    permissions = _permissions_of(user, OuterRef(user))
    listed: Expression = _JSONListOf(_names(permissions).values("v"))
    return users.annotate(**{LOADED: listed})


class PermissionsInOneQueryBackend(ModelBackend):
    """Django's ModelBackend (same answers, same per-user cache), but a user's own permissions
    and their groups' are read together, or taken from the user when it was loaded
    `with_permissions`."""

    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            loaded = getattr(user_obj, LOADED, None)
            if loaded is not None and not user_obj.is_superuser:
                user_obj._perm_cache = set(loaded)
            else:
                permissions = (
                    Permission.objects.all() if user_obj.is_superuser else _permissions_of(user_obj)
                )
                user_obj._perm_cache = set(_names(permissions).values_list("v", flat=True))
        return user_obj._perm_cache
