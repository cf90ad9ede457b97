"""The token's user, whether the token was released, the user's permissions and groups: one query
for what simplejwt, Django's backend and the visibility rule read in five
(jobs.api.authentication, jobs.visibility)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from jobs.sql.parts import Part, column, quote, table


def _aggregate_text(expression: str) -> str:
    """The values of `expression` over the rows, joined by the separator given as a parameter."""
    function = "string_agg" if connection.vendor == "postgresql" else "group_concat"
    return f"{function}({expression}, %s)"


# Permission names are "app_label.codename"; a separator no codename holds.
PERMISSION_SEPARATOR = "\x1f"


@dataclass(frozen=True)
class UserOfToken:
    """A token's user, whether the token was released, the user's permission names and group
    ids."""

    user: Any
    released: bool
    permissions: frozenset[str]
    group_ids: frozenset[int]


@cache
def _user_of_token_statement(vendor: str) -> tuple[str, Part]:
    user_model = get_user_model()
    user = Part.of(user_model, "u")
    user_groups = user_model.groups.through
    user_permissions = user_model.user_permissions.through
    group_permissions = Group.permissions.through
    name = f"ct.{column(ContentType, 'app_label')} || '.' || p.{column(Permission, 'codename')}"
    user_pk = f"u.{quote(user_model._meta.pk.column)}"
    # The user's own permissions and their groups', read through the user's group rows: one join
    # fewer for PostgreSQL to plan than through the groups.
    permissions = (
        f"SELECT {_aggregate_text(name)} FROM {table(Permission)} p "
        f"JOIN {table(ContentType)} ct "
        f"ON ct.{quote('id')} = p.{column(Permission, 'content_type')} "
        f"WHERE p.{quote('id')} IN "
        f"(SELECT up.{column(user_permissions, 'permission')} FROM {table(user_permissions)} up "
        f"WHERE up.{column(user_permissions, 'user')} = {user_pk} "
        f"UNION SELECT gp.{column(group_permissions, 'permission')} "
        f"FROM {table(group_permissions)} gp JOIN {table(user_groups)} ug "
        f"ON ug.{column(user_groups, 'group')} = gp.{column(group_permissions, 'group')} "
        f"WHERE ug.{column(user_groups, 'user')} = {user_pk})"
    )
    released = (
        f"EXISTS (SELECT 1 FROM {table(BlacklistedToken)} b JOIN {table(OutstandingToken)} o "
        f"ON o.{quote('id')} = b.{column(BlacklistedToken, 'token')} "
        f"WHERE o.{column(OutstandingToken, 'jti')} = %s)"
    )
    group_id = f"ug.{column(user_groups, 'group')}"
    groups = (
        f"SELECT {_aggregate_text(f'CAST({group_id} AS text)')} FROM {table(user_groups)} ug "
        f"WHERE ug.{column(user_groups, 'user')} = {user_pk}"
    )
    sql = (
        f"SELECT {', '.join(user.select)}, {released}, ({permissions}), ({groups}) "
        f"FROM {table(user_model)} u WHERE {user_pk} = %s"
    )
    return sql, user


def user_of_token(user_pk: Any, jti: str) -> UserOfToken | None:
    """The user a token names, with its release and permissions: one query. None if the user
    no longer exists."""
    sql, user = _user_of_token_statement(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql, [jti, PERMISSION_SEPARATOR, ",", user_pk])
        row = cursor.fetchone()
    if row is None:
        return None
    width = len(user.fields)
    names, groups = row[width + 1], row[width + 2]
    return UserOfToken(
        user.build(row[:width]),
        bool(row[width]),
        frozenset(names.split(PERMISSION_SEPARATOR) if names else ()),
        frozenset(int(pk) for pk in groups.split(",")) if groups else frozenset(),
    )


def token_released(jti: str) -> bool:
    """Whether a token was released, for a token whose user is gone."""
    return BlacklistedToken.objects.filter(token__jti=jti).exists()
