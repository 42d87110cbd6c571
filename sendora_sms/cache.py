"""Django's Redis cache with one `redis.Redis` client per connection pool instead of one per call.

`django.core.cache.backends.redis.RedisCacheClient.get_client` builds a new `redis.Redis` object on
every cache operation; redis-py 8 fills ~170 response callbacks in its constructor, which made client
construction ≈ 5 % of a send request (the rate limit's `add` + `exists` + `incr`, and the bad-key
check). A `redis.Redis` client is only a thin front to its connection pool (each command borrows a
connection and gives it back), so reusing it changes nothing else: same pools, same options, same
commands, same errors (cache failures still reach `orgs.rate_limits`, which fails open).
Django's cache handler is per-thread, so each thread already has its own instance of this class.

`incr` is one atomic round trip (a Lua script: INCRBY only if the key exists) instead of Django's
EXISTS then INCRBY. Same contract (ValueError for a missing key), one round trip fewer for every
rate-limited request, and no race: with two commands a key expiring in between was re-created by
INCRBY without a TTL.
"""
from dataclasses import dataclass

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient


_INCR_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCRBY', KEYS[1], ARGV[1]) end
return false
"""


_INCR_IN_WINDOW = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


# incr_in_window_then: the window counter, then — only while it is within `limit` — a further script
# (its own KEYS/ARGV: the rest of ours), all in one atomic round trip. The further script's text runs
# unchanged inside a function whose parameters shadow KEYS and ARGV.
_INCR_IN_WINDOW_THEN = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
if n > tonumber(ARGV[2]) then return {n} end
local step = function(KEYS, ARGV)
--THEN--
end
return {n, step({unpack(KEYS, 2)}, {unpack(ARGV, 3)})}
"""


@dataclass(frozen=True)
class ScriptStep:
    """A Lua script with its keys and args, to ride in another script's round trip (incr_in_window_then)."""

    script: str
    keys: list
    args: list


def _resp(parts) -> bytes:
    """One Redis command in RESP, encoded in one go (redis-py's pack checks and converts every argument)."""
    encoded = [p if isinstance(p, bytes) else str(p).encode() for p in parts]
    return b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in encoded)


class PendingReply:
    """A command sent on a pooled connection whose reply is read later, by `result()` (issue #14: the send
    path builds its statements while its rate-limit script travels). The connection stays out of the pool
    until then. `discard()` drops a reply never read, with its connection (a no-op once read)."""

    def __init__(self, pool, conn):
        self._pool, self._conn = pool, conn

    def result(self):
        conn, self._conn = self._conn, None
        if conn is None:
            raise RuntimeError("the reply was already read")
        try:
            return conn.read_response()
        except ResponseError:
            raise
        except BaseException:
            conn.disconnect()
            raise
        finally:
            self._pool.release(conn)

    def discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.disconnect()
            self._pool.release(conn)


def pooled_command_start(client, *parts) -> PendingReply:
    """One command on one of `client`'s pooled connections, without redis-py's per-command machinery (issue #14:
    its argument packing and generic command path cost more than the round trip on the hot paths): encoded in
    one go and sent; its reply is read by the returned PendingReply's `result()`. An error reply (ResponseError)
    is raised as is; any other failure — a connection error, a timeout, an interruption mid-reply — drops the
    connection, then propagates."""
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        conn.send_packed_command([_resp(parts)])
    except BaseException:
        conn.disconnect()
        pool.release(conn)
        raise
    return PendingReply(pool, conn)


def pooled_command(client, *parts):
    """pooled_command_start, its reply read at once."""
    return pooled_command_start(client, *parts).result()


class PendingScript:
    """`script(keys=…, args=…)` sent as one pooled command (EVALSHA; issue #14: encoding the send's 18 arguments
    and the generic command path were a third of the rate limit's CPU), its result read by `result()`. Anything
    unusual goes the regular way, with redis-py's own handling: NOSCRIPT (the script cache was flushed: the
    regular call loads it), or a connection error or timeout (the regular call makes its configured retries —
    as redis-py's own retry would after a timeout, the command may then have run twice). A script's own error
    is raised as is. `shape` turns the script's reply into what `result()` returns."""

    def __init__(self, client, script, keys: list, args: list, shape=None):
        self._script, self._keys, self._args, self._shape = script, keys, args, shape
        try:
            self._pending = pooled_command_start(client, b"EVALSHA", script.sha, len(keys), *keys, *args)
        except (RedisConnectionError, RedisTimeoutError, OSError):
            self._pending = None

    def result(self):
        reply = self._reply()
        return reply if self._shape is None else self._shape(reply)

    def _reply(self):
        if self._pending is not None:
            pending, self._pending = self._pending, None
            try:
                return pending.result()
            except NoScriptError:
                pass
            except (RedisConnectionError, RedisTimeoutError, OSError):
                pass
        return self._script(keys=self._keys, args=self._args)

    def discard(self) -> None:
        if self._pending is not None:
            self._pending.discard()
            self._pending = None


class RedisCacheClient(DjangoRedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}
        self._incr_scripts = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client

    def incr(self, key, delta):
        client = self.get_client(key, write=True)
        script = self._incr_scripts.get(id(client))
        if script is None:
            script = self._incr_scripts[id(client)] = client.register_script(_INCR_IF_EXISTS)
        value = script(keys=[key], args=[delta])  # EVALSHA (SCRIPT LOAD once, done by redis-py)
        if value is None:
            raise ValueError(f"Key '{key}' not found.")
        return value

    def incr_in_window(self, key, ttl: int) -> int:
        """INCR a fixed-window counter, creating it with a TTL: one atomic round trip (issue #14; the
        per-org send rate was django-ratelimit's SET NX + INCR, two round trips per send)."""
        client = self.get_client(key, write=True)
        script = self._incr_scripts.get(("window", id(client)))
        if script is None:
            script = self._incr_scripts[("window", id(client))] = client.register_script(_INCR_IN_WINDOW)
        return int(script(keys=[key], args=[ttl]))

    def incr_in_window_then(self, key, ttl: int, limit: int, then: str, then_keys, then_args) -> tuple[int, object]:
        """incr_in_window, then — only when the count is at most `limit` — the Lua script `then` with
        its own keys and args, atomically and in ONE round trip (issue #14: the per-org send rate and the
        pumping window, which runs only for sends within the rate). Returns (count, then's result, or
        None when the count is over `limit` and `then` did not run)."""
        return self.incr_in_window_then_start(key, ttl, limit, then, then_keys, then_args).result()

    def incr_in_window_then_start(self, key, ttl: int, limit: int, then: str, then_keys, then_args) -> PendingScript:
        """incr_in_window_then, sent now; its (count, then's result) read by the returned object's `result()`."""
        client = self.get_client(key, write=True)
        script = self._incr_scripts.get(("then", then, id(client)))
        if script is None:
            script = self._incr_scripts[("then", then, id(client))] = client.register_script(
                _INCR_IN_WINDOW_THEN.replace("--THEN--", then))
        return PendingScript(client, script, [key, *then_keys], [ttl, limit, *then_args], shape=_count_and_then)


def _count_and_then(reply) -> tuple[int, object]:
    """_INCR_IN_WINDOW_THEN's reply → (count, then's result or None)."""
    return int(reply[0]), (reply[1] if len(reply) > 1 else None)


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = RedisCacheClient

    def incr_in_window(self, key, ttl: int) -> int:
        return self._cache.incr_in_window(self.make_and_validate_key(key), ttl)

    def incr_in_window_then(self, key, ttl: int, limit: int, then: str, then_keys, then_args) -> tuple[int, object]:
        return self._cache.incr_in_window_then(self.make_and_validate_key(key), ttl, limit, then, then_keys,
                                               then_args)

    def incr_in_window_then_start(self, key, ttl: int, limit: int, then: str, then_keys, then_args) -> PendingScript:
        return self._cache.incr_in_window_then_start(self.make_and_validate_key(key), ttl, limit, then, then_keys,
                                                     then_args)
