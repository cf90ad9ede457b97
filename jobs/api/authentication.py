"""Tokens as CRM.COM clients send them: in the JSON body as `token`, or as a Bearer header."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import SlidingToken, Token

from jobs.backends import LOADED
from jobs.sql.tokens import token_released, user_of_token
from jobs.visibility import GROUPS_LOADED


class _SlidingTokenReleaseReadWithUser(SlidingToken):
    """A sliding token whose blacklist entry (a released token) is not looked up on its own:
    CrmTokenAuthentication.get_user reads it in the same query as the token's user."""

    def check_blacklist(self) -> None:
        return None


def _invalid(error: TokenError) -> InvalidToken:
    # What simplejwt raises for a token that fails validation, so the answer stays the same.
    return InvalidToken(
        {
            "detail": "Given token not valid for any token type",
            "messages": [
                {
                    "token_class": SlidingToken.__name__,
                    "token_type": SlidingToken.token_type,
                    "message": error.args[0],
                }
            ],
        }
    )


class CrmTokenAuthentication(JWTAuthentication):
    """simplejwt's sliding tokens (2 hours, released through its blacklist), read from the
    `Authorization: Bearer` header or, failing that, from the body's `token`.

    The only token class is simplejwt's SlidingToken (settings.SIMPLE_JWT). The user, whether the
    token was released, what the user may do and their groups (which jobs they see) are read in
    one query (`jobs.sql.tokens.user_of_token`).
    (simplejwt's CHECK_REVOKE_TOKEN, off by default, is not supported.)
    """

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        from_header = super().authenticate(request)
        if from_header is not None:
            return from_header
        if request.method not in ("POST", "PUT", "PATCH"):
            return None
        data = request.data
        raw = data.get("token") if isinstance(data, dict) else None
        if not isinstance(raw, str) or not raw:
            return None
        token = self.get_validated_token(raw.encode())
        return self.get_user(token), token

    def get_validated_token(self, raw_token: bytes) -> Token:
        try:
            return _SlidingTokenReleaseReadWithUser(raw_token)
        except TokenError as error:
            raise _invalid(error) from error

    def get_user(self, validated_token: Token) -> Any:
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
            jti = validated_token[api_settings.JTI_CLAIM]
        except KeyError as error:
            raise InvalidToken("Token contained no recognizable user identification") from error
        field = get_user_model()._meta.get_field(api_settings.USER_ID_FIELD)
        try:
            found = user_of_token(field.to_python(user_id), jti)
        except ValidationError:
            found = None
        # A released token says so, whoever its user was (only a vanished user costs a query).
        released = found.released if found is not None else token_released(jti)
        user = None
        if found is not None:
            user = found.user
            setattr(user, LOADED, found.permissions)
            setattr(user, GROUPS_LOADED, found.group_ids)
        if released:
            raise _invalid(TokenError("Token is blacklisted"))
        if user is None:
            raise AuthenticationFailed("User not found", code="user_not_found")
        if api_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
            raise AuthenticationFailed("User is inactive", code="user_inactive")
        return user


class CrmTokenScheme(OpenApiAuthenticationExtension):
    target_class = CrmTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "The token from POST authentication/token. CRM.COM clients may send it "
            "in the JSON body as `token` instead.",
        }


class LoginThrottle(SimpleRateThrottle):
    """Login attempts per username and client address (rate: DEFAULT_THROTTLE_RATES['login']).

    Counted in fixed windows with the cache's atomic increment, not DRF's read-modify-write
    history: concurrent attempts (several gunicorn workers sharing Redis) could otherwise each read
    the same history and all get through, which is exactly what a password guesser would do.
    """

    scope = "login"

    def get_cache_key(self, request: Request, view: Any) -> str:
        data = request.data
        username = data.get("username") if isinstance(data, dict) else None
        username = username.strip().lower() if isinstance(username, str) else ""
        # Hashed: a username is arbitrary text, a cache key should not be.
        who = hashlib.sha256(f"{self.get_ident(request)}:{username}".encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": who}

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None:
            return True
        now = time.time()
        window = int(now // self.duration)
        key = f"{self.get_cache_key(request, view)}:{window}"
        self.wait_seconds = self.duration - (now - window * self.duration)
        self.cache.add(key, 0, timeout=self.duration + 1)
        try:
            attempts = self.cache.incr(key)
        except ValueError:  # the window's key expired between add and incr: a new window
            self.cache.set(key, 1, timeout=self.duration + 1)
            attempts = 1
        return attempts <= self.num_requests

    def wait(self) -> float:
        return max(1.0, self.wait_seconds)
