"""send_create: everything from an accepted API request to a committed send.

The seven decisions of the API contract (README.md, /api/schema) "Send", in order — each one recorded on the send (status /
suppressed_reason / metadata / error_code) and in the audit log (action `sms.send`,
details.decision):

1. validation            → 400 invalid_phone_number | invalid_body | invalid_category | invalid_metadata
1b. destination country  → 403 country_not_allowed                (sms/services/cost.py; nothing stored but the audit entry)
2. provider configured?  → 412 provider_not_configured            (nothing stored but the audit entry)
3. per-org rate limit    → 429 rate_limited + Retry-After          (nothing stored but the audit entry)
3b. pumping velocity     → 429 suspected_pumping (Redis, before the transaction; live sends; sms/pumping.py)
4. recipient suppressed  → stored failed, metadata.suppressed=true, error_code "suppressed", event
                           sms.failed; 202; no quota; never dispatched
5. duplicate within 60 s → stored suppressed / recent_duplicate; 202; no quota
6. reserve spend + quota → 429 spend_cap_exceeded | quota_exceeded (nothing stored but the audit entry;
                           the estimated price on the spend meter first, orgs/spend.py, then one quota unit)
   (a test key's send: one unit of the sandbox's daily cap instead, SANDBOX_DAILY_CAP; never the live quota)

Test and live keys are separate worlds (README "Test and live keys"): the duplicate window and
Idempotency-Keys are per mode; the suppression list (4) is the org's one list for both.
7. stored queued + timeline row + counters + its dispatch hand-off row (sms/services/handoff.py); 202

Concurrency, by construction:
- duplicates: a transaction-scoped advisory lock on (org, dedupe_key) serialises identical requests
  around the check-then-insert; the loser sees the winner's committed row (READ COMMITTED re-reads
  per statement). SQLite serialises writers anyway, so the lock is a no-op there.
- quota: one conditional UPDATE (orgs/quota.py), undone with the transaction if anything later fails.
- Idempotency-Key: the partial unique index (org, idempotency_key); a concurrent loser's whole
  transaction rolls back (quota included) and it answers with the winner's send.

Hot path (queued, live key, no Idempotency-Key): 1 database round trip and 1 Redis round trip.
Redis: the rate limit with the pumping window (one script, sent before the send's rows are built and its reply
read after, before the transaction's first statement). The dispatch hand-off is a row written with the send
(the transactional outbox; a worker's dispatcher publishes the tasks: sms/services/handoff.py).
PostgreSQL: for an org read with its API key (`first_route`), the checks are assumed and verified by the
writes' own round trip (_ASSUMED_CHECKS_SQL; _store); otherwise, and whenever that guard misses, the send's
transaction: the checks (provider account with the
suppression lookup, the advisory lock, the duplicate lookup: three statements, one round trip), then the
send + timeline + audit INSERTs, the counter and spend-meter upserts, the quota UPDATE and COMMIT (one
round trip: quota_reserve(commit=True), sendora_sms/db.py run_and_commit; when that quota attempt
reserves nothing, nothing is committed and the transaction runs again with the full reservation). All are
indexed point lookups or inserts, none scans history. The per-org hot rows (quota meter, day counter) are
the last statements before COMMIT, to keep their row locks short. (A web request's connection health
check adds no round trip while the connection is provably alive: sendora_sms/db_health.py.)
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DataError, IntegrityError, connection, transaction
from django.utils import timezone

from audit.models import Outcome
from audit.services import Actor, RequestContext, audit_entry_build, audit_record
from orgs.errors import QuotaExceededError
from orgs.models import ApiKey, KeyMode, Org
from orgs.quota import QuotaFirstAttemptMissed, quota_reserve, sandbox_reserve
from orgs.spend import spend_capped
from orgs.rate_limits import send_rate_check, send_rate_count_start
from sendora_sms.errors import RateLimited, SendoraError, ValidationFailed
from sms import phones
from sms.encoding import segment_info
from sms.links.services import Shortened, links_shorten
from sms.errors import IdempotencyKeyReused, ProviderNotConfigured
from sendora_sms.db import (StatementBatch, bind_param, fail_unless, failed_unless, insert_statement, inserts_combined,
                             rollback_keeping_prepared, vendor)
from sms.models import Category, EventType, Provider, ProviderAccount, Send, SendStatusChange, Suppression
from sms.selectors import send_by_idempotency_key
from sms.services import cost
from sms.services.counters import send_counts_add_statement
from sms.services.events import event_record, send_event_data
from sms.services.handoff import handoff_statements
from sms.statuses import DispatchState, SendStatus

logger = logging.getLogger(__name__)

AUDIT_ACTION = "sms.send"
BODY_MAX_CHARS = 1600
METADATA_MAX_BYTES = 4096
IDEMPOTENCY_KEY_MAX = 255
# Keys the platform itself writes into a send's metadata (the API contract (README.md, /api/schema) v1.1 "Test and live keys"); a request
# that sets one is 400 invalid_metadata. Add a key here before any service writes it.
RESERVED_METADATA_KEYS = frozenset({"suppressed"})
_IDEMPOTENCY_KEY_OK = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII, like Stripe's keys


class Decision:
    """details.decision values in the audit log."""

    VALIDATION = "validation"
    PROVIDER_NOT_CONFIGURED = "provider_not_configured"
    RATE_LIMITED = "rate_limited"
    RECIPIENT_SUPPRESSED = "recipient_suppressed"
    RECENT_DUPLICATE = "recent_duplicate"
    QUOTA_EXCEEDED = "quota_exceeded"
    QUEUED = "queued"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"


SUPPRESSED_ERROR_CODE = "suppressed"
RECENT_DUPLICATE = "recent_duplicate"


@dataclass(frozen=True)
class SendCreateResult:
    send: Send
    replayed: bool = False  # True: an Idempotency-Key retry answered with the first request's send


@dataclass(frozen=True)
class SendInput:
    to: str
    body: str
    category: str
    metadata: dict


# ---------------------------------------------------------------------------------------------
# Decision 1: validation (values; the API serializer has already checked the request's shape)
# ---------------------------------------------------------------------------------------------


def send_input_validate(*, to: Any, body: Any, category: Any = None, metadata: Any = None) -> SendInput:
    """Normalise and check one send's input; raise ValidationFailed with the field's code."""
    try:
        to_e164 = phones.normalize_phone(to)
    except phones.InvalidPhoneNumber as exc:
        raise ValidationFailed(f"`to` is not a phone number: {exc}", code="invalid_phone_number",
                               details={"field": "to"}) from None
    if not isinstance(body, str) or not 1 <= len(body) <= BODY_MAX_CHARS or not body.strip():
        raise ValidationFailed(f"`body` must be a non-blank string of 1 to {BODY_MAX_CHARS} characters.",
                               code="invalid_body", details={"field": "body", "max_chars": BODY_MAX_CHARS})
    category = Category.TRANSACTIONAL if category is None else category
    if category not in (Category.TRANSACTIONAL, Category.MARKETING):
        raise ValidationFailed("`category` must be `transactional` or `marketing`.", code="invalid_category",
                               details={"field": "category", "allowed": [Category.TRANSACTIONAL, Category.MARKETING]})
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict):
        raise ValidationFailed("`metadata` must be a JSON object.", code="invalid_metadata",
                               details={"field": "metadata"})
    reserved = sorted(RESERVED_METADATA_KEYS.intersection(metadata))
    if reserved:
        # Compliance state is the platform's to write: a caller must not forge `suppressed`.
        raise ValidationFailed(f"`metadata` may not set {', '.join(f'`{k}`' for k in reserved)}: "
                               "reserved for the platform.", code="invalid_metadata",
                               details={"field": "metadata", "reserved_keys": reserved})
    size = len(_canonical_json(metadata))
    if size > METADATA_MAX_BYTES:
        raise ValidationFailed(f"`metadata` is {size} bytes serialised; the limit is {METADATA_MAX_BYTES}.",
                               code="invalid_metadata",
                               details={"field": "metadata", "bytes": size, "max_bytes": METADATA_MAX_BYTES})
    return SendInput(to=to_e164, body=body, category=category, metadata=metadata)


def _idempotency_key_validate(raw: str | None) -> str | None:
    if raw is None or raw == "":
        return None
    if not _IDEMPOTENCY_KEY_OK.match(raw):
        raise ValidationFailed(f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} visible ASCII characters.",
                               code="invalid_idempotency_key", details={"header": "Idempotency-Key"})
    return raw


def _canonical_json(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _fingerprint(data: SendInput) -> str:
    """Identifies "the same request" for Idempotency-Key (after normalisation: +1 555… == (555) …)."""
    payload = {"to": data.to, "body": data.body, "category": data.category, "metadata": data.metadata}
    return hashlib.sha256(_canonical_json(payload)).hexdigest()


def _dedupe_key(data: SendInput, mode: str) -> str:
    """The duplicate window is per mode: a test send never marks a live one `recent_duplicate` (nor the
    reverse). The mode is part of the hashed key, so the lookup, its index and the advisory lock are
    unchanged; live keys hash exactly as before."""
    if mode == KeyMode.TEST:
        return hashlib.sha256(f"test|{data.to}|{data.body}".encode()).hexdigest()
    return hashlib.sha256(f"{data.to}|{data.body}".encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# The service
# ---------------------------------------------------------------------------------------------


def send_create(*, org: Org, api_key: ApiKey, to: Any, body: Any, category: Any = None, metadata: Any = None,
                idempotency_key: str | None = None, context: RequestContext | None = None,
                payload_bytes: int = 0, shorten_links: bool | None = None) -> SendCreateResult:
    """Accept one SMS for sending (the API contract (README.md, /api/schema) "Send"). Raises a SendoraError for every 4xx outcome,
    after recording it in the audit log; stored outcomes (queued / suppressed / failed) return."""
    context = context or RequestContext()
    try:
        return _send_create(org=org, api_key=api_key, to=to, body=body, category=category, metadata=metadata,
                            idempotency_key=idempotency_key, context=context, payload_bytes=payload_bytes,
                            shorten_links=shorten_links)
    except SendoraError as exc:
        send_rejection_record(org=org, api_key=api_key, error=exc, context=context, payload_bytes=payload_bytes)
        raise


def send_rejection_record(*, org: Org, api_key: ApiKey | None, error: SendoraError,
                          context: RequestContext | None = None, payload_bytes: int = 0) -> None:
    """Audit a refused send request (the only thing a refusal writes). Also used by the API view
    for requests whose shape is invalid before send_create can be called."""
    audit_record(
        org=org, actor=Actor.api_key(api_key) if api_key else Actor.system("api"), action=AUDIT_ACTION,
        resource_type="send", outcome=Outcome.REJECTED, payload_bytes=payload_bytes, context=context,
        details={"decision": _decision_for(error), "code": error.code, "http_status": error.http_status,
                 **cost.audit_details(error)},
    )


def _decision_for(error: SendoraError) -> str:
    if error.code in cost.DECISIONS:  # country_not_allowed, suspected_pumping, spend_cap_exceeded
        return error.code
    if isinstance(error, ProviderNotConfigured):
        return Decision.PROVIDER_NOT_CONFIGURED
    if isinstance(error, RateLimited):
        return Decision.RATE_LIMITED
    if isinstance(error, QuotaExceededError):
        return Decision.QUOTA_EXCEEDED
    if isinstance(error, IdempotencyKeyReused):
        return Decision.IDEMPOTENCY_KEY_REUSED
    return Decision.VALIDATION


def _send_create(*, org, api_key, to, body, category, metadata, idempotency_key, context,
                 payload_bytes, shorten_links=None) -> SendCreateResult:
    # 1. validation
    data = send_input_validate(to=to, body=body, category=category, metadata=metadata)
    # Short links (sms/links): the delivered body, its URLs wrapped; 400 too_many_links / link_not_allowed.
    shortened = links_shorten(org=org, body=data.body, enabled=shorten_links)
    idempotency_key = _idempotency_key_validate(idempotency_key)
    fingerprint = _fingerprint(data)
    mode = KeyMode.TEST if api_key.mode == KeyMode.TEST else KeyMode.PROD
    if idempotency_key:
        existing = send_by_idempotency_key(org=org, mode=mode, idempotency_key=idempotency_key)
        if existing is not None:
            return _replay(existing, fingerprint)

    # 1b. destination country allowed (README "Cost and countries"; sms/services/cost.py)
    country = cost.destination_check(org=org, to=data.to)

    # 2. provider configured? (test keys too: a sandbox send still needs a configured org). Read from the
    # account the API key's lookup already joined (orgs.selectors.api_key_get_by_raw): no extra query.
    # The transaction below re-reads it in its first statement, so an account removed meanwhile is
    # still a 412 and nothing is stored.
    if not _provider_configured(org):
        raise ProviderNotConfigured()
    # 3. per-org send rate (Redis; fails open when the cache is down — the quota still caps). Decided
    # BEFORE the transaction's first statement: while Redis answers, or times out (socket_timeout), no database
    # transaction — no row lock, no advisory lock, no `idle in transaction` connection — is held.
    # The counter is Redis' atomic INCR, so the check needs no database lock to stay race-free.
    # 3b. pumping velocity (Redis, decided with the rate; live sends only). Both are counted in ONE atomic
    # Redis round trip (send_rate_count): the rate's counter, then — only for a send within the rate — the
    # pumping window; each decision is then taken, in order, from what was counted. The script is sent now
    # and its reply read by `decide`, which _store_transaction calls before its first statement: the send's
    # rows are built while the script travels (issue #14: one wait for Redis fewer per send).
    pending = send_rate_count_start(org=org, then=cost.pumping_step(org=org, api_key=api_key, to=data.to,
                                                                      country=country))
    decided = []

    def decide() -> None:
        if not decided:
            counted = pending.result()
            send_rate_check(org=org, counted=counted)
            cost.pumping_guard(org=org, api_key=api_key, to=data.to, country=country, counted=counted)
            decided.append(True)

    try:
        return _store(org=org, api_key=api_key, data=data, idempotency_key=idempotency_key,
                      fingerprint=fingerprint, context=context, payload_bytes=payload_bytes, shortened=shortened,
                      country=country, decide=decide)
    except IntegrityError:
        # A concurrent request with the same Idempotency-Key committed first; our transaction
        # (quota reservation included) has rolled back. Answer as its retry would be answered.
        winner = (send_by_idempotency_key(org=org, mode=mode, idempotency_key=idempotency_key)
                  if idempotency_key else None)
        if winner is None:
            raise
        return _replay(winner, fingerprint)
    finally:
        pending.discard()  # a reply never read (an error before the decision): dropped with its connection


@dataclass(frozen=True)
class _Checks:
    """What decisions 2, 4 and 5 read from the database."""

    provider: str
    from_number: str
    recipient_suppressed: bool
    duplicate_of: Any  # the id of a send of the same (org, to, body) queued within the window, or None


_ACCOUNT_CHECK_SQL = (
    f"SELECT a.provider, a.from_number, EXISTS (SELECT 1 FROM {Suppression._meta.db_table} s "
    f"WHERE s.org_id = a.org_id AND s.phone_number = %s) "
    f"FROM {ProviderAccount._meta.db_table} a WHERE a.org_id = %s AND a.enabled "
    f"ORDER BY a.priority, a.provider LIMIT 1"  # the first enabled account (dispatch may fail over)
)
# PostgreSQL: the advisory lock and the account check as ONE statement (issue #14: a statement less per
# send). Exactly one row whatever the org has (the lateral join yields NULLs without an account), so the
# lock is always taken, as when it was a statement of its own. The account and suppression are read with
# the statement's snapshot, taken before the lock is granted — as before, when they were read by the
# statement before the lock; only the duplicate lookup (the next statement) must run after it.
_LOCK_AND_ACCOUNT_CHECK_SQL = (
    "SELECT a.provider, a.from_number, a.suppressed, pg_advisory_xact_lock(%s::bigint) "
    f"FROM (SELECT 1) AS one LEFT JOIN LATERAL ({_ACCOUNT_CHECK_SQL}) "
    "AS a (provider, from_number, suppressed) ON true"
)
_DUPLICATE_SQL = (
    f"SELECT id FROM {Send._meta.db_table} WHERE org_id = %s AND dedupe_key = %s AND created_at >= %s "
    f"ORDER BY created_at DESC LIMIT 1"  # served by the partial index send_dedupe_idx
)


def _checks(*, org: Org, to: str, dedupe_key: str) -> _Checks | None:
    """The org's provider and sender (None: not configured), whether `to` is on the org's
    suppression list, and the duplicate lookup, read at the start of the send's transaction.

    On PostgreSQL these are two statements in ONE round trip (sendora_sms/db.py): the transaction-scoped
    advisory lock on (org, dedupe_key), held until commit/rollback, with the provider account and an
    EXISTS probe of the suppression list's unique index (_LOCK_AND_ACCOUNT_CHECK_SQL); then the
    duplicate lookup. Each statement takes its own snapshot (READ COMMITTED), so the lookup runs after
    the lock is granted and sees the committed send of a concurrent holder. The lock is taken even when the request goes
    on to be refused (412, 429) or the recipient is suppressed: it only delays an identical
    concurrent request until this transaction ends. SQLite serialises writers; there is nothing to
    race, so it only looks up."""
    org_id = Org._meta.pk.get_db_prep_value(org.pk, connection)
    since = connection.ops.adapt_datetimefield_value(
        timezone.now() - timedelta(seconds=settings.SMS_DUPLICATE_WINDOW_SECONDS))
    if connection.vendor == "postgresql":
        account_check = (_LOCK_AND_ACCOUNT_CHECK_SQL, [_lock_id(org, dedupe_key), to, org_id])
    else:
        account_check = (_ACCOUNT_CHECK_SQL, [to, org_id])
    batch = StatementBatch([account_check, (_DUPLICATE_SQL, [org_id, dedupe_key, since])])
    batch.run()
    account, duplicate = batch.results[0], batch.results[-1]
    if not account or account[0][0] is None:
        return None
    provider, from_number, suppressed = account[0][:3]
    return _Checks(provider=provider, from_number=from_number, recipient_suppressed=bool(suppressed),
                   duplicate_of=Send._meta.pk.to_python(duplicate[0][0]) if duplicate else None)


# The one-round-trip path (issue #14): the common send — the org's first enabled account as the API key's lookup
# read it moments ago (orgs/selectors.py `first_route`), the recipient not suppressed, no duplicate — is
# written WITHOUT first reading the checks: they run as the first statements of the writes' own round trip,
# the lock, then this guard, which fails the statement (so the rest of the round trip, the COMMIT
# included, is skipped and the transaction aborted) unless all three still hold. The guard's snapshot is
# taken after the lock is granted, like the duplicate lookup's on the two-round-trip path, and it reads the
# account, the suppression list and the window together. When it fails, the transaction rolls back and
# the two-round-trip path reads the checks and decides (_store).
_CHECKS_MISSED = "sendora:send-checks-missed"
_LOCK_SQL = "SELECT pg_advisory_xact_lock(%s::bigint)"
# The window test compares the newest same-key send's time outside its lookup, which holds only equalities:
# that lookup is then served by send_dedupe_idx whatever the statistics say. (As `EXISTS (… AND created_at >=
# since)`, a generic plan was seen walking send_org_created_idx through every send of the org's last minute.)
_ASSUMED_CHECKS_SQL = "SELECT " + fail_unless(
    f"EXISTS (SELECT 1 FROM ({_ACCOUNT_CHECK_SQL}) AS a (provider, from_number, suppressed) "
    f"WHERE a.provider = %s AND a.from_number = %s AND NOT a.suppressed) "
    f"AND COALESCE((SELECT created_at FROM {Send._meta.db_table} WHERE org_id = %s AND dedupe_key = %s "
    f"ORDER BY created_at DESC LIMIT 1) < %s, true)", _CHECKS_MISSED)


class _ChecksMissed(Exception):
    """The one-round-trip path's guard failed: nothing was written, the transaction is aborted."""


def _lock_id(org: Org, dedupe_key: str) -> int:
    digest = hashlib.sha256(f"{org.pk}|{dedupe_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _assumed_checks(*, org: Org, to: str, dedupe_key: str, route: tuple[str, str]) -> tuple[_Checks, list]:
    """The checks as assumed (`route`, not suppressed, no duplicate), and the statements that verify them:
    the advisory lock, then the guard (_ASSUMED_CHECKS_SQL), to lead the writes' round trip."""
    org_id = bind_param(Org._meta.pk, org.pk)
    since = timezone.now() - timedelta(seconds=settings.SMS_DUPLICATE_WINDOW_SECONDS)  # PostgreSQL: bound as it is
    provider, from_number = route
    statements = [(_LOCK_SQL, [_lock_id(org, dedupe_key)]),
                  (_ASSUMED_CHECKS_SQL, [to, org_id, provider, from_number, org_id, dedupe_key, since])]
    return _Checks(provider=provider, from_number=from_number, recipient_suppressed=False,
                   duplicate_of=None), statements


def _assumable_route(org: Org, country: str) -> tuple | None:
    """The route the one-round-trip path may assume: PostgreSQL, the org's first enabled account as read with
    the API key (None without it, e.g. a send made from the dashboard), and no spend cap on the send (a capped
    org's meter read, a round trip of its own, must follow the checks' lock)."""
    route = getattr(org, "first_route", None)
    if route is None or vendor() != "postgresql" or spend_capped(org, country):
        return None
    return route


def _provider_configured(org: Org) -> bool:
    """Whether the org has an enabled provider account — from the flag the API key lookup set when it
    is there (no query), else one indexed lookup. Outside any transaction."""
    cached = getattr(org, "has_enabled_provider", None)
    if cached is not None:
        return bool(cached)
    return ProviderAccount.objects.filter(org=org, enabled=True).exists()


def _replay(existing: Send, fingerprint: str) -> SendCreateResult:
    if existing.request_fingerprint != fingerprint:
        raise IdempotencyKeyReused(details={"send_id": str(existing.id)})
    return SendCreateResult(send=existing, replayed=True)


def _store(**kw) -> SendCreateResult:
    """The send's transaction. Its last round trip also COMMITs (quota_reserve(commit=True)); in the rare
    case that round trip's quota attempt reserves nothing (a new period's rows, a full shard), nothing is
    committed, the transaction rolls back and runs once more in full (all its checks again) with the
    reservation that creates rows and tries every shard, and the atomic block's own COMMIT.

    First, where it may (_assumable_route), the one-round-trip path: the checks assumed and verified by the
    writes' own round trip. When they do not hold (a suppressed recipient, a duplicate, an account changed
    since the key was read) nothing is written and the two-round-trip path below decides, as it always did."""
    if _assumable_route(kw["org"], kw["country"]) is not None:
        try:
            return _store_once(commit_early=True, assume=True, **kw)
        except _ChecksMissed:
            pass
        except QuotaFirstAttemptMissed:
            return _store_once(commit_early=False, **kw)
    try:
        return _store_once(commit_early=True, **kw)
    except QuotaFirstAttemptMissed:
        return _store_once(commit_early=False, **kw)


def _store_once(*, assume: bool = False, **kw) -> SendCreateResult:
    try:
        return _store_transaction(assume=assume, **kw)
    except QuotaExceededError as exc:
        if assume:  # refused, maybe before the checks ran (a quota of 0): decisions 4 and 5 come first
            raise _ChecksMissed() from exc
        raise


@transaction.atomic(durable=True)
def _store_transaction(*, org, api_key, data: SendInput, idempotency_key, fingerprint, context,
                       payload_bytes, shortened: Shortened, country: str, commit_early: bool,
                       assume: bool, decide) -> SendCreateResult:
    """`decide()`: decisions 3 and 3b (_send_create), taken before this transaction's first statement."""
    test_mode = api_key.mode == KeyMode.TEST
    dedupe_key = _dedupe_key(data, KeyMode.TEST if test_mode else KeyMode.PROD)
    verify: list = []  # the one-round-trip path: the statements that verify the assumed checks, run first
    if assume:
        checks, verify = _assumed_checks(org=org, to=data.to, dedupe_key=dedupe_key, route=org.first_route)
    else:
        decide()
        checks = _checks(org=org, to=data.to, dedupe_key=dedupe_key)
    # 2. (again, authoritative) the account may have been removed since the check before the transaction
    if checks is None:
        raise ProviderNotConfigured()  # rolls back: nothing stored (the audit entry is written after)
    # 3. the rate was checked before the transaction (_send_create)

    info = segment_info(shortened.body)  # what the handset receives
    send = Send(
        org=org, api_key=api_key, to=data.to, from_number=checks.from_number, body=shortened.body,
        original_body=data.body if shortened.links else "",
        category=data.category, metadata=dict(data.metadata), segments=info.segments, encoding=info.encoding,
        mode=KeyMode.TEST if test_mode else KeyMode.PROD,
        provider=Provider.SANDBOX if test_mode else checks.provider,
        idempotency_key=idempotency_key, request_fingerprint=fingerprint,
    )
    detail: dict = {}

    if checks.recipient_suppressed:
        # 4. suppression list: stored as failed, never dispatched, no quota. Nothing bypasses this.
        decision = Decision.RECIPIENT_SUPPRESSED
        send.status = SendStatus.FAILED
        send.metadata["suppressed"] = True
        send.error_code = SUPPRESSED_ERROR_CODE
        send.error_message = "The recipient is on the org's suppression list (opted out)."
        send.failed_at = timezone.now()
    else:
        duplicate_of = checks.duplicate_of
        if duplicate_of is not None:
            # 5. the same (org, to, body) was queued within the window: stored, not sent, no quota.
            decision = Decision.RECENT_DUPLICATE
            send.status = SendStatus.SUPPRESSED
            send.suppressed_reason = RECENT_DUPLICATE
            detail["duplicate_of"] = str(duplicate_of)
        else:
            # 7. queued — provided the quota reservation below (decision 6) succeeds.
            decision = Decision.QUEUED
            send.status = SendStatus.QUEUED
            send.dispatch_state = DispatchState.PENDING
            send.dedupe_key = dedupe_key
            cost.send_price_estimate(send, org=org, country=country)

    # The send, its timeline row and its audit entry: plain INSERTs, sent to the database together
    # with the hot-row statements below in ONE round trip (sendora_sms/db.py; one by one on SQLite).
    # The plain INSERTs go as ONE statement on PostgreSQL (data-modifying CTEs; sendora_sms/db.py).
    writes = verify + inserts_combined([
        insert_statement(send),  # sets created_at/updated_at, which the counter statement uses
        insert_statement(SendStatusChange(send=send, status=send.status, source="api",
                                          detail={"decision": decision, **detail})),
        insert_statement(audit_entry_build(
            org=org, actor=Actor.api_key(api_key), action=AUDIT_ACTION, resource_type="send", resource_id=send.id,
            outcome=Outcome.OK if decision == Decision.QUEUED else Outcome.REJECTED, payload_bytes=payload_bytes,
            context=context, details={"decision": decision, "status": send.status, "mode": send.mode, **detail},
        )),
        *shortened.statements(send),
        *handoff_statements(send),  # the dispatch hand-off (sms/services/handoff.py)
    ])
    decide()  # 3, 3b: the rate limit's reply, read before anything is sent to the database
    if decision == Decision.RECIPIENT_SUPPRESSED:
        StatementBatch(writes).run()
        writes = []
        # Subscribers learn of every send that ends failed, this one included (once per send).
        event_record(org_id=org.pk, type=EventType.FAILED, send=send, data=send_event_data(send))
    # The two per-org hot rows (today's counter, then the quota meter) are updated last, so their row
    # locks are held only for these statements and the commit — not while the send, timeline and
    # audit rows are written. Concurrent sends of one org queue on these rows; keeping that window
    # short is what keeps per-org throughput up. Counter before meter: the same lock order as the
    # dispatch failure path (counter move, then quota refund), and a first meter attempt that finds
    # its shard full goes on to lock other meter rows — never a counter row — so no cycle can form.
    writes.append(send_counts_add_statement(send=send))
    try:
        _reserve_and_write(org=org, send=send, decision=decision, test_mode=test_mode, country=country,
                           writes=writes, commit_early=commit_early)
    except DataError as exc:
        if verify and failed_unless(exc, _CHECKS_MISSED):  # the assumed checks did not hold: nothing was written
            rollback_keeping_prepared()
            raise _ChecksMissed() from exc
        raise
    return SendCreateResult(send=send, replayed=False)


def _reserve_and_write(*, org, send: Send, decision: str, test_mode: bool, country: str, writes: list,
                       commit_early: bool) -> None:
    """Decision 6 (a queued send's sandbox cap, or spend caps then quota) with the send's writes in front of it,
    in one round trip; the writes alone for a send stored without sending."""
    if decision == Decision.QUEUED and test_mode:
        # 6. (test keys) the sandbox's own daily cap — never the live quota. Same single statement shape.
        sandbox_reserve(org=org, before=writes)
    elif decision == Decision.QUEUED:
        # 6. spend caps (SpendCapExceeded) then quota (QuotaExceededError): either raises → this whole
        # transaction rolls back → 429, nothing stored.
        writes = cost.spend_reserve(org=org, send=send, country=country, before=writes)
        # commit_early: this round trip also COMMITs (PostgreSQL); no query may follow in this transaction.
        quota_reserve(org=org, units=1, before=writes, commit=commit_early)
    else:
        StatementBatch(writes).run()
