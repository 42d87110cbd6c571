from django.core.cache.backends.redis import RedisCache as DjangoRedisCache

from sendora_sms.cache import RedisCache


def test_redis_cache_reuses_one_client_per_connection_pool():
    cache = RedisCache("redis://127.0.0.1:6379/0", {})
    assert isinstance(cache, DjangoRedisCache)
    first = cache._cache.get_client("k", write=True)
    assert cache._cache.get_client("other", write=True) is first
    assert cache._cache.get_client("k") is first  # one server: reads and writes share pool 0
    assert first.connection_pool is cache._cache._get_connection_pool(True)


def test_each_cache_instance_has_its_own_clients():
    a = RedisCache("redis://127.0.0.1:6379/0", {})
    b = RedisCache("redis://127.0.0.1:6379/0", {})
    assert a._cache.get_client() is not b._cache.get_client()
