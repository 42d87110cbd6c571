"""The send's rate limit and pumping window counted in ONE Redis round trip (orgs/rate_limits.send_rate_count,
sendora_sms/cache.py incr_in_window_then; issue #14) — with the guarantees of two separate checks in order:
a send the rate refuses is never counted by the pumping window, and a store failure fails both open."""
import pytest
from django.core.cache import cache

from orgs.models import KeyMode
from orgs.rate_limits import send_rate_check, send_rate_count
from sendora_sms.cache import ScriptStep
from sendora_sms.errors import RateLimited
from sms.pumping import KEY_PREFIX, SuspectedPumping
from sms.services import send_create
from tests.factories import ApiKeyFactory, ProviderAccountFactory

pytestmark = pytest.mark.django_db

_STEP = "redis.call('INCR', KEYS[1]) return {tonumber(ARGV[1]) * 2, redis.call('GET', KEYS[1])}"


def _redis():
    if not hasattr(cache, "incr_in_window_then"):
        pytest.skip("needs the Redis cache")
    return cache._cache.get_client(write=True)


def test_the_step_runs_only_within_the_limit(org):
    client = _redis()
    step_key = f"test:then:{org.pk}"
    client.delete(step_key)
    key = f"test-window:{org.pk}"
    first = cache.incr_in_window_then(key, 5, 2, _STEP, [step_key], [21])
    second = cache.incr_in_window_then(key, 5, 2, _STEP, [step_key], [21])
    third = cache.incr_in_window_then(key, 5, 2, _STEP, [step_key], [21])
    assert first == (1, [42, b"1"]) and second == (2, [42, b"2"])
    assert third == (3, None)  # over the limit: the step did not run
    assert client.get(step_key) == b"2"
    assert 0 < client.ttl(cache.make_key(key)) <= 5


@pytest.fixture
def live_key(org):
    ProviderAccountFactory(org=org)
    return ApiKeyFactory(org=org, mode=KeyMode.PROD)


def _send(org, key, to):
    return send_create(org=org, api_key=key, to=to, body=f"hi {to}")


def _window(client, org, rng="+1415555"):
    return client.zcard(f"{KEY_PREFIX}:r:{org.pk}:{rng}")


def test_a_send_refused_by_the_rate_is_not_counted_by_the_pumping_window(org, live_key):
    client = _redis()
    org.send_rate_override = 0  # every send is over the rate
    org.save()
    for i in range(3):
        with pytest.raises(RateLimited):
            _send(org, live_key, f"+1415555{i:04d}")
    assert _window(client, org) == 0


def test_sends_within_the_rate_are_counted_and_refused_by_the_pumping_window(org, live_key):
    client = _redis()
    org.pumping_limit = 2
    org.save()
    _send(org, live_key, "+14155550001")
    _send(org, live_key, "+14155550002")
    with pytest.raises(SuspectedPumping):
        _send(org, live_key, "+14155550003")
    assert _window(client, org) == 2


def test_a_store_failure_fails_both_checks_open(org, live_key, monkeypatch, caplog):
    _redis()

    def broken(*args, **kwargs):
        raise ConnectionError("redis down")

    monkeypatch.setattr(cache, "incr_in_window_then", broken)
    monkeypatch.setattr(cache, "incr_in_window_then_start", broken)  # the send's path: sent, then read
    org.pumping_limit = 1
    org.send_rate_override = 1
    org.save()
    for i in range(3):
        assert _send(org, live_key, f"+1415555{i:04d}").send.status == "queued"
    messages = [r.getMessage() for r in caplog.records]
    assert any("failing open for sms-send" in m for m in messages)
    assert any("pumping store unavailable" in m for m in messages)


def test_send_rate_check_alone_still_counts_for_itself(org):
    _redis()
    org.send_rate_override = 1
    org.save()
    send_rate_check(org=org)
    with pytest.raises(RateLimited):
        send_rate_check(org=org, counted=send_rate_count(org=org, then=ScriptStep(_STEP, [f"t:{org.pk}"], [1])))


def test_a_flushed_script_cache_is_reloaded_and_counts_once(org):
    client = _redis()
    step_key = f"test:then:{org.pk}:flush"
    client.delete(step_key)
    key = f"test-window-flush:{org.pk}"
    assert cache.incr_in_window_then(key, 5, 10, _STEP, [step_key], [1])[0] == 1
    client.script_flush()  # e.g. a Redis restart: EVALSHA answers NOSCRIPT
    assert cache.incr_in_window_then(key, 5, 10, _STEP, [step_key], [1]) == (2, [2, b"2"])
    assert client.get(step_key) == b"2"


def test_the_encoded_command_is_what_redis_py_would_send():
    from redis.connection import Connection

    from sendora_sms.cache import _resp

    parts = [b"EVALSHA", "abc", 2, "k:1", "ключ", 3600000, "1", b"\x00raw"]
    assert _resp(parts) == b"".join(Connection().pack_command(*parts))


def test_the_count_is_sent_first_and_read_later_on_one_connection_kept_until_then(org):
    # The send path sends the script, builds its rows, then reads the reply (orgs/rate_limits.send_rate_count_start).
    client = _redis()
    pool = client.connection_pool
    key = f"test-window-pending:{org.pk}"
    in_use = len(pool._in_use_connections)
    pending = cache.incr_in_window_then_start(key, 5, 10, _STEP, [f"t:{org.pk}:p"], [1])
    assert len(pool._in_use_connections) == in_use + 1  # the reply is still on it
    assert client.get(cache.make_key(key)) == b"1"  # already counted by Redis, before the reply is read
    assert pending.result()[0] == 1
    assert len(pool._in_use_connections) == in_use


def test_a_reply_never_read_is_dropped_with_its_connection(org):
    client = _redis()
    pool = client.connection_pool
    in_use = len(pool._in_use_connections)
    pending = cache.incr_in_window_then_start(f"test-window-drop:{org.pk}", 5, 10, _STEP, [f"t:{org.pk}:d"], [1])
    pending.discard()
    assert len(pool._in_use_connections) == in_use
    # The pool's next command is not answered with the dropped reply.
    assert cache.incr_in_window_then(f"test-window-drop2:{org.pk}", 5, 10, _STEP, [f"t:{org.pk}:d2"], [1])[0] == 1


def test_a_failure_while_reading_the_reply_fails_open(org, monkeypatch, caplog):
    from orgs.rate_limits import send_rate_count_start

    _redis()

    class Broken:
        def result(self):
            raise ConnectionError("reset while reading")

        def discard(self):
            pass

    monkeypatch.setattr(cache, "incr_in_window_then_start", lambda *a, **k: Broken())
    counted = send_rate_count_start(org=org, then=ScriptStep(_STEP, [f"t:{org.pk}:b"], [1])).result()
    assert counted.available is False and isinstance(counted.error, ConnectionError)
    assert any("failing open for sms-send" in r.getMessage() for r in caplog.records)
