"""Tokens as CRM.COM clients send them: in the JSON body as `token`, or as a Bearer header."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework_simplejwt.authentication import JWTAuthentication


class CrmTokenAuthentication(JWTAuthentication):
    """simplejwt's sliding tokens (2 hours, released through its blacklist), read from the
    `Authorization: Bearer` header or, failing that, from the body's `token`."""

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
