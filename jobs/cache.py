"""Django's own Redis cache, made to degrade rather than fail: when Redis cannot be reached, each
call falls back to this process's memory and a warning is logged, so login throttling still
counts (per process, as without REDIS_URL) and no request fails because the cache is down."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# How often, at most, the warning is repeated while Redis stays away.
WARN_EVERY_SECONDS = 30.0
_FALLBACK_OPERATIONS = (
    "add",
    "get",
    "set",
    "touch",
    "delete",
    "get_many",
    "has_key",
    "incr",
    "set_many",
    "delete_many",
    "clear",
)


class FallbackRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._fallback = LocMemCache(f"fallback-{server}", {})
        self._warned_at = 0.0

    def ping(self) -> None:
        """Raise unless Redis itself answers (for readiness, which must not see the fallback)."""
        self._cache.get_client(write=False).ping()

    def _falling_back(self, operation: str, error: RedisError) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = now
            logger.warning(
                "Redis cache unreachable; using this process's memory",
                extra={"operation": operation, "error": type(error).__name__},
            )


def _with_fallback(operation: str):
    def call(self: FallbackRedisCache, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(RedisCache, operation)(self, *args, **kwargs)
        except RedisError as error:
            self._falling_back(operation, error)
            return getattr(self._fallback, operation)(*args, **kwargs)

    call.__name__ = operation
    return call


for _operation in _FALLBACK_OPERATIONS:
    setattr(FallbackRedisCache, _operation, _with_fallback(_operation))
