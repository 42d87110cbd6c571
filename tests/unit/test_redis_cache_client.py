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


def _cache():
    from django.conf import settings

    location = settings.CACHES["default"].get("LOCATION") or "redis://127.0.0.1:6379/0"
    return RedisCache(location, {})


def test_incr_adds_to_an_existing_key_and_keeps_its_expiry():
    cache = _cache()
    cache.set("incr-test-existing", 5, timeout=120)
    try:
        assert cache.incr("incr-test-existing") == 6
        assert cache.incr("incr-test-existing", 10) == 16
        assert cache.get("incr-test-existing") == 16
        client = cache._cache.get_client(write=True)
        assert 0 < client.ttl(cache.make_key("incr-test-existing")) <= 120  # still expires
    finally:
        cache.delete("incr-test-existing")


def test_incr_of_a_missing_key_raises_and_creates_nothing():
    cache = _cache()
    cache.delete("incr-test-missing")
    try:
        cache.incr("incr-test-missing")
    except ValueError as exc:
        assert "not found" in str(exc)
    else:
        raise AssertionError("incr of a missing key must raise ValueError, as Django's does")
    assert cache.get("incr-test-missing") is None  # INCRBY never ran: no key without a TTL


def test_django_ratelimit_counts_through_incr():
    import uuid
    from unittest import mock

    from django_ratelimit.core import get_usage

    cache, value = _cache(), uuid.uuid4().hex  # a fresh counter on every run
    with mock.patch("django_ratelimit.core.caches", {"default": cache}):
        counts = [get_usage(None, group="incr-test", key=lambda _g, _r: value, rate="1000/m", increment=True)["count"]
                  for _ in range(3)]
    assert counts == [1, 2, 3]
