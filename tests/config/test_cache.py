"""The Redis cache backend keeps one client per connection pool (Django's builds one per call)."""

from __future__ import annotations

from config.cache import PooledRedisCache


def test_every_cache_call_gets_the_same_redis_client():
    # No connection is made: a redis-py client connects on its first command.
    cache = PooledRedisCache("redis://127.0.0.1:6379/15", {})
    first = cache._cache.get_client("a", write=True)
    assert cache._cache.get_client("b", write=True) is first
    assert cache._cache.get_client("c") is first  # one server: reads use the same pool
    assert first.connection_pool is cache._cache._get_connection_pool(True)
