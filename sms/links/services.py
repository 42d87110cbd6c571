"""Short links: the rules.

- Shortening at acceptance: `links_shorten` is the one call the send path makes (sms/services/sends.py),
  before segments are counted. It finds the body's http(s) URLs (detection.py), refuses a body with more
  than MAX_LINKS of them (400 too_many_links) or one whose host is blocked (400 link_not_allowed; the org's
  list and the global one in data/blocked_hosts.txt), and, unless shortening is off, replaces each with
  `{short base}/{code}`. The Link rows are INSERTed in the send's own transaction (`Shortened.statements`)
  and their cache entries written after it commits, so the first click is already a cache hit.
- Codes: CODE_LENGTH characters of base62 from `secrets` (≈ 8·10^17 codes: not sequential, not guessable by
  walking, and a collision — the unique index — is a one-in-10^9 event even with a billion live links).
- Resolving a code (`link_entry`): a per-process dict (ENTRY_TTL s), then the shared Redis cache, then one
  indexed SELECT (whose answer, found or not, is cached). A cache hit touches no database.
- Clicks: the redirect classifies the request (preview agent / HEAD / platform / country) and queues one
  small JSON record on a Redis list (`clicks_queue`: one RPUSH, on the broker's Redis — never the flushable
  cache); `clicks_drain` (a Celery task, and beat) moves them into LinkClick rows in batches
  (`clicks_ingest`: idempotent on the record's id, at least once). Ingestion applies the behavioural rule
  (a click within TOO_SOON of the send's delivery is a scanner's preview), updates the per-link counters and
  emits `sms.link_clicked` on a send's first real click — once per send by the outbox's unique
  (send, type) index, whatever the concurrency.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone
from django.utils.encoding import iri_to_uri

from sendora_sms.db import insert_statement
from sendora_sms.errors import ValidationFailed
from sms.links.detection import find_urls
from sms.links.models import AppRoute, ClickKind, Link, LinkClick, LinkSettings

logger = logging.getLogger(__name__)

MAX_LINKS = 10
CODE_LENGTH = 10
CODE_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
TOO_SOON = dt.timedelta(seconds=1)
ENTRY_TTL = 60.0  # seconds a process keeps a resolved code before asking the shared cache again
_CACHE_PREFIX = "sms:link:"
_MISSING = "-"


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkBase:
    url: str  # no trailing slash: https://sndr.link or https://sms.example.com/l
    host: str
    path: str  # "" (a link-only host) or "/l"
    prefix: str | None  # the redirect's path prefix ("/l/"), None on a link-only host
    link_host: str | None  # the link-only host, None when the base has a path
    country_header: str  # the WSGI name of SMS_LINK_COUNTRY_HEADER


@functools.cache
def link_base() -> LinkBase:
    url = settings.SMS_LINK_BASE_URL.rstrip("/")
    parts = urlsplit(url)
    host, path = (parts.hostname or "").lower(), parts.path.rstrip("/")
    return LinkBase(url=url, host=host, path=path, prefix=path + "/" if path else None,
                    link_host=None if path else host,
                    country_header="HTTP_" + settings.SMS_LINK_COUNTRY_HEADER.upper().replace("-", "_"))


def org_link_settings(org) -> LinkSettings:
    """The org's row, or an unsaved one holding the defaults."""
    found = LinkSettings.objects.filter(org=org).first()
    return found if found is not None else LinkSettings(org=org)


def short_base_for(link_settings: LinkSettings) -> tuple[str, str]:
    """(base URL, domain) for new links of an org: its branded domain, else the platform's base."""
    if link_settings.branded_domain:
        return f"https://{link_settings.branded_domain}", link_settings.branded_domain
    return link_base().url, ""


def normalise_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


@functools.cache
def global_blocked_hosts() -> frozenset[str]:
    path = Path(__file__).with_name("data") / "blocked_hosts.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(normalise_host(line) for line in lines if line.strip() and not line.startswith("#"))


def _host_blocked(host: str, blocked) -> bool:
    labels = host.split(".")
    return any(".".join(labels[i:]) in blocked for i in range(len(labels)))


# ---------------------------------------------------------------------------------------------
# Shortening at acceptance (the send path's one call)
# ---------------------------------------------------------------------------------------------


@dataclass
class Shortened:
    body: str  # what the handset receives
    links: list[Link] = field(default_factory=list)  # unsaved, in order of appearance; send unset

    def statements(self, send) -> list:
        """The links' INSERTs, for the send's transaction; their cache entries are written on commit."""
        send._prefetched_objects_cache = {"links": list(self.links)}  # the response renders them, no query
        if not self.links:
            return []
        for link in self.links:
            link.send = send
            link.mode = send.mode
        transaction.on_commit(functools.partial(_cache_links, self.links), robust=True)
        return [insert_statement(link) for link in self.links]


def _own_short_url(url: str, branded: str | None) -> bool:
    base = link_base().url + "/"
    return url.startswith(base) or bool(branded and urlsplit(url).hostname == branded)


def links_shorten(*, org, body: str, enabled: bool | None) -> Shortened:
    """Decide the delivered body of a send (README "Links"). Raises ValidationFailed (400) for
    too_many_links / link_not_allowed. A body without "://" costs nothing (no parse, no query)."""
    found = find_urls(body)
    if not found:
        return Shortened(body=body)
    if len(found) > MAX_LINKS:
        raise ValidationFailed(f"The body has {len(found)} links; at most {MAX_LINKS} are allowed.",
                               code="too_many_links", details={"field": "body", "links": len(found),
                                                               "max_links": MAX_LINKS})
    link_settings = org_link_settings(org)
    blocked = global_blocked_hosts() | {normalise_host(h) for h in link_settings.blocked_hosts or [] if isinstance(h, str)}
    for item in found:
        host = normalise_host(urlsplit(item.url).hostname or "")
        if _host_blocked(host, blocked):
            raise ValidationFailed("The body links to a host that is not allowed.", code="link_not_allowed",
                                   details={"field": "body", "url": item.url[:200]})
    if enabled is None:
        enabled = link_settings.shorten_links
    if not enabled:
        return Shortened(body=body)
    base, domain = short_base_for(link_settings)
    expires_at = timezone.now() + dt.timedelta(days=link_settings.retention_days)
    out, links, cursor = [], [], 0
    for item in found:
        if _own_short_url(item.url, link_settings.branded_domain):
            continue  # already one of ours: wrapping it again would only add a hop
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        short_url = f"{base}/{code}"
        links.append(Link(org_id=org.pk, position=len(links), code=code, url=item.url, domain=domain,
                          short_url=short_url, expires_at=expires_at))
        out.append(body[cursor:item.start])
        out.append(short_url)
        cursor = item.end
    out.append(body[cursor:])
    return Shortened(body="".join(out), links=links)


# ---------------------------------------------------------------------------------------------
# Resolving a code: process dict → shared cache → database
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    link_id: str
    send_id: str
    domain: str
    location: str  # the target, ASCII (IDNA host, percent-encoded IRI), query and fragment intact
    expires: float  # epoch seconds
    ios: str  # app URLs for the deep-link page ("" when no app route applies)
    android: str
    fallback: str

    def dumps(self) -> str:
        return json.dumps([self.link_id, self.send_id, self.domain, self.location, self.expires, self.ios,
                           self.android, self.fallback], separators=(",", ":"))

    @classmethod
    def loads(cls, raw: str) -> Entry:
        return cls(*json.loads(raw))


def location_for(url: str) -> str:
    """An IRI as a URI a Location header can carry: the host in IDNA (punycode), the rest percent-encoded."""
    parts = urlsplit(url)
    netloc = parts.netloc
    host = parts.hostname or ""
    if host and not host.isascii():
        userinfo, _, hostport = netloc.rpartition("@")
        port = f":{parts.port}" if parts.port else ""
        netloc = (userinfo + "@" if userinfo else "") + normalise_host(host) + port
        del hostport
    return iri_to_uri(urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)))


def _android_target(android_url: str, rest: str, fallback: str) -> str:
    if android_url.startswith("intent:") and "#Intent;" in android_url:
        head, _, tail = android_url.partition("#Intent;")
        if "S.browser_fallback_url=" not in tail:
            tail = tail.replace(";end", f";S.browser_fallback_url={quote(fallback, safe='')};end", 1)
        return f"{head}{rest}#Intent;{tail}"
    return android_url + rest


def _route_for(url: str, routes) -> AppRoute | None:
    best = None
    for route in routes:
        if url.startswith(route.prefix) and (best is None or len(route.prefix) > len(best.prefix)):
            best = route
    return best


def entry_build(link: Link, routes) -> Entry:
    location = location_for(link.url)
    ios = android = fallback = ""
    route = _route_for(link.url, routes)
    if route is not None and (route.ios_url or route.android_url):
        rest = iri_to_uri(link.url[len(route.prefix):])
        fallback = location_for(route.fallback_url) if route.fallback_url else location
        ios = route.ios_url + rest if route.ios_url else ""
        android = _android_target(route.android_url, rest, fallback) if route.android_url else ""
    return Entry(link_id=str(link.id), send_id=str(link.send_id), domain=link.domain, location=location,
                 expires=link.expires_at.timestamp(), ios=ios, android=android, fallback=fallback)


def _cache_timeout(expires: float) -> int:
    return max(1, min(int(expires - time.time()), 3600))  # an hour: app route changes reach old links too


def _cache_links(links: list[Link]) -> None:
    if not links:
        return
    routes = list(AppRoute.objects.filter(org_id=links[0].org_id))
    entries = {link.code: entry_build(link, routes) for link in links}
    try:
        for code, entry in entries.items():
            cache.set(_CACHE_PREFIX + code, entry.dumps(), timeout=_cache_timeout(entry.expires))
    except Exception:  # a cache outage only costs the first click a SELECT
        logger.warning("links: could not cache new codes", exc_info=True)


_local: dict[str, tuple[float, Entry | None]] = {}
_LOCAL_MAX = 50_000


def local_cache_clear() -> None:
    _local.clear()
    _branded["until"] = 0.0


def link_entry(code: str) -> Entry | None:
    """The code's entry (None: no such code). No database query when either cache has it."""
    now = time.monotonic()
    hit = _local.get(code)
    if hit is not None and hit[0] > now:
        return hit[1]
    entry = _shared_get(code)
    if len(_local) >= _LOCAL_MAX:
        _local.clear()
    _local[code] = (now + ENTRY_TTL, entry)
    return entry


def _shared_get(code: str) -> Entry | None:
    key = _CACHE_PREFIX + code
    try:
        raw = cache.get(key)
    except Exception:
        logger.warning("links: cache unavailable, reading the database", exc_info=True)
        raw = None
    if raw == _MISSING:
        return None
    if raw is not None:
        return Entry.loads(raw)
    link = Link.objects.filter(code=code).only("id", "send_id", "org_id", "domain", "url", "expires_at").first()
    if link is None:
        entry, value, timeout = None, _MISSING, 60
    else:
        entry = entry_build(link, list(AppRoute.objects.filter(org_id=link.org_id)))
        value, timeout = entry.dumps(), _cache_timeout(entry.expires)
    try:
        cache.set(key, value, timeout=timeout)
    except Exception:
        pass
    return entry


def link_cache_forget(codes) -> None:
    """After a change that alters entries (an org's app routes): drop the shared entries; processes
    keep theirs for at most ENTRY_TTL seconds."""
    cache.delete_many([_CACHE_PREFIX + c for c in codes])


_branded: dict = {"until": 0.0, "hosts": frozenset()}
_BRANDED_KEY = "sms:link:branded-domains"
_BRANDED_TTL = 30.0


def branded_domains() -> frozenset[str]:
    """Every org's branded domain (a process keeps the set for _BRANDED_TTL s; shared cache; database)."""
    now = time.monotonic()
    if _branded["until"] > now:
        return _branded["hosts"]
    try:
        hosts = cache.get(_BRANDED_KEY)
    except Exception:
        hosts = None
    if hosts is None:
        hosts = list(LinkSettings.objects.exclude(branded_domain=None).exclude(branded_domain="")
                     .values_list("branded_domain", flat=True))
        try:
            cache.set(_BRANDED_KEY, hosts, timeout=300)
        except Exception:
            pass
    _branded.update(until=now + _BRANDED_TTL, hosts=frozenset(h.lower() for h in hosts))
    return _branded["hosts"]


def link_settings_changed() -> None:
    """Call after an org's link settings change (branded domain)."""
    cache.delete(_BRANDED_KEY)
    _branded["until"] = 0.0


# ---------------------------------------------------------------------------------------------
# Clicks: queue (the redirect) → drain → ingest (the worker)
# ---------------------------------------------------------------------------------------------

_redis_client = None
_redis_lock = threading.Lock()


def _redis():
    global _redis_client
    if _redis_client is None:
        with _redis_lock:
            if _redis_client is None:
                import redis

                _redis_client = redis.Redis.from_url(settings.SMS_LINK_CLICKS_REDIS_URL, socket_connect_timeout=2,
                                                     socket_timeout=2, health_check_interval=30)
    return _redis_client


def click_record(*, entry: Entry, kind: str, reason: str, platform: str, country: str, user_agent: str) -> dict:
    return {"i": uuid.uuid4().hex, "l": entry.link_id, "t": time.time(), "k": kind, "r": reason, "p": platform,
            "c": country, "ua": user_agent[:300]}


def clicks_queue(record: dict) -> None:
    """One RPUSH on the click queue. Without a queue (embedded mode) or when Redis refuses, the click is
    written straight away instead: slower, never lost."""
    if settings.SMS_LINK_CLICKS_REDIS_URL:
        try:
            _redis().rpush(settings.SMS_LINK_CLICKS_QUEUE, json.dumps(record, separators=(",", ":")))
            return
        except Exception:
            logger.warning("links: click queue unavailable, recording the click directly", exc_info=True)
    clicks_ingest([record])


DRAIN_BATCH = 500


def clicks_drain(*, max_batches: int = 1000) -> int:
    """Move queued clicks into the database; returns how many records were processed. One drainer at a
    time (a Redis lock); each batch is read, ingested (idempotent), committed, and only then trimmed from
    the queue — a crash in between ingests the batch again, which changes nothing."""
    if not settings.SMS_LINK_CLICKS_REDIS_URL:
        return 0
    r = _redis()
    key, lock_key, token = settings.SMS_LINK_CLICKS_QUEUE, settings.SMS_LINK_CLICKS_QUEUE + ":lock", uuid.uuid4().hex
    if not r.set(lock_key, token, nx=True, ex=120):
        return 0
    done = 0
    try:
        for _ in range(max_batches):
            raw = r.lrange(key, 0, DRAIN_BATCH - 1)
            if not raw:
                break
            records = []
            for item in raw:
                try:
                    records.append(json.loads(item))
                except ValueError:
                    logger.error("links: dropping an unreadable click record %r", item[:200])
            clicks_ingest(records)
            r.ltrim(key, len(raw), -1)
            done += len(raw)
            r.expire(lock_key, 120)
    finally:
        if r.get(lock_key) == token.encode():
            r.delete(lock_key)
    return done


_CLICK_TABLE = LinkClick._meta.db_table
_CLICK_FIELDS = ("id", "link", "send", "kind", "reason", "platform", "country", "user_agent", "clicked_at")
_CLICK_PG_TYPES = ("uuid", "uuid", "uuid", "text", "text", "text", "text", "text", "timestamptz")


@dataclass(frozen=True)
class _Row:
    id: uuid.UUID
    link_id: uuid.UUID
    send_id: uuid.UUID
    kind: str
    reason: str
    platform: str
    country: str
    user_agent: str
    clicked_at: dt.datetime


def _insert_clicks(rows: list[_Row]) -> set:
    """INSERT … ON CONFLICT (id) DO NOTHING RETURNING id: the ids that are new (a re-ingested record is not).
    On PostgreSQL the batch travels as nine arrays (`unnest`): a statement of nine parameters, not thousands."""
    if not rows:
        return set()
    fields = [LinkClick._meta.get_field(name) for name in _CLICK_FIELDS]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    if connection.vendor == "postgresql":
        arrays = ", ".join(f"%s::{t}[]" for t in _CLICK_PG_TYPES)
        params = [[getattr(row, f.attname) for row in rows] for f in fields]
        sql = f"INSERT INTO {_CLICK_TABLE} ({columns}) SELECT * FROM unnest({arrays}) ON CONFLICT (id) DO NOTHING RETURNING id"
    else:
        placeholders = ", ".join(["(" + ", ".join(["%s"] * len(fields)) + ")"] * len(rows))
        params = [f.get_db_prep_save(getattr(row, f.attname), connection) for row in rows for f in fields]
        sql = f"INSERT INTO {_CLICK_TABLE} ({columns}) VALUES {placeholders} ON CONFLICT (id) DO NOTHING RETURNING id"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {LinkClick._meta.pk.to_python(row[0]) for row in cursor.fetchall()}


def clicks_ingest(records: list[dict]) -> int:
    """Store queued click records (see module doc); returns how many were new. Safe to run concurrently and
    to run twice on the same records."""
    from sms.models import EventType
    from sms.services.events import event_record

    parsed = []
    for rec in records:
        try:
            parsed.append((uuid.UUID(str(rec["i"])), uuid.UUID(str(rec["l"])),
                           dt.datetime.fromtimestamp(float(rec["t"]), tz=dt.timezone.utc), rec))
        except (KeyError, ValueError, TypeError):
            logger.error("links: dropping a malformed click record %r", rec)
    if not parsed:
        return 0
    with transaction.atomic():
        links = {link.id: link for link in Link.objects.filter(id__in={p[1] for p in parsed}).select_related("send")
                 .only("id", "org_id", "send_id", "url", "first_clicked_at",
                       "send__id", "send__mode", "send__sent_at", "send__delivered_at")}
        rows = []
        for click_id, link_id, at, rec in parsed:
            link = links.get(link_id)
            if link is None:
                continue  # the link (its send) was deleted meanwhile
            kind = ClickKind.PREVIEW if rec.get("k") == ClickKind.PREVIEW else ClickKind.CLICK
            reason = str(rec.get("r") or "")[:24]
            delivered = link.send.delivered_at or link.send.sent_at
            if kind == ClickKind.CLICK and delivered is not None and at < delivered + TOO_SOON:
                kind, reason = ClickKind.PREVIEW, "too_soon"  # carrier scanners fetch on delivery
            country = str(rec.get("c") or "")
            rows.append(_Row(id=click_id, link_id=link.id, send_id=link.send_id, kind=kind,
                             reason=reason if kind == ClickKind.PREVIEW else "",
                             platform=str(rec.get("p") or "other")[:8],
                             country=country if len(country) == 2 else "",
                             user_agent=str(rec.get("ua") or "")[:300], clicked_at=at))
        new = _insert_clicks(rows)
        per_link: dict = {}
        for row in rows:
            if row.id not in new:
                continue
            agg = per_link.setdefault(row.link_id, {"clicks": 0, "previews": 0, "first": None})
            if row.kind == ClickKind.CLICK:
                agg["clicks"] += 1
                if agg["first"] is None or row.clicked_at < agg["first"]:
                    agg["first"] = row.clicked_at
            else:
                agg["previews"] += 1
        _update_counters(per_link)
        first_by_send: dict = {}
        for link_id, agg in per_link.items():
            link = links[link_id]
            # A link already clicked before this batch: its send's event exists (written in the same transaction
            # as that first_clicked_at), so it is not tried again.
            if agg["first"] is None or link.first_clicked_at is not None:
                continue
            seen = first_by_send.get(link.send_id)
            if seen is None or agg["first"] < seen[0]:
                first_by_send[link.send_id] = (agg["first"], link)
        for send_id, (first, link) in first_by_send.items():
            # Once per send: the outbox's unique (send, type) index makes a second one a no-op, however
            # many drainers or first clicks race here.
            event_record(org_id=link.org_id, type=EventType.LINK_CLICKED, send=link.send, data={
                "send_id": str(send_id), "link_id": str(link.id), "url": link.url,
                "clicked_at": first.isoformat().replace("+00:00", "Z")})
    return len(new)


_LINK_TABLE = Link._meta.db_table


def _update_counters(per_link: dict) -> None:
    """Add a batch's clicks/previews to its links, and move first_clicked_at earlier where due: ONE
    `UPDATE … FROM unnest(…)` on PostgreSQL (rows in id order), a statement per link elsewhere."""
    if not per_link:
        return
    items = sorted(per_link.items(), key=lambda item: str(item[0]))
    if connection.vendor == "postgresql":
        params = [[link_id for link_id, _ in items], [agg["clicks"] for _, agg in items],
                  [agg["previews"] for _, agg in items], [agg["first"] for _, agg in items]]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {_LINK_TABLE} AS l SET clicks = l.clicks + v.c, previews = l.previews + v.p, "
                f"first_clicked_at = CASE WHEN l.first_clicked_at IS NULL OR l.first_clicked_at > v.f THEN v.f "
                f"ELSE l.first_clicked_at END "
                f"FROM unnest(%s::uuid[], %s::integer[], %s::integer[], %s::timestamptz[]) AS v(id, c, p, f) "
                f"WHERE l.id = v.id", params)
        return
    for link_id, agg in items:
        update = {"clicks": F("clicks") + agg["clicks"], "previews": F("previews") + agg["previews"]}
        if agg["first"] is not None:
            first = agg["first"]
            update["first_clicked_at"] = Case(When(first_clicked_at__isnull=True, then=Value(first)),
                                              When(first_clicked_at__gt=first, then=Value(first)),
                                              default=F("first_clicked_at"))
        Link.objects.filter(pk=link_id).update(**update)
