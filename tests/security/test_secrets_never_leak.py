"""Issue #6 item 8 — secrets: after exercising every surface with known raw API keys and Twilio auth
tokens, none of them appears in any response (body or header), any log line (captured at DEBUG,
SQL included), any dashboard page, any management command's output (except create_api_key's one
showing of the key it creates), any column of any table, or any Redis value — while the hashed key
and the encrypted token are what is stored. Tenant webhook secrets (whsec_…, issue #15) likewise appear only
in the responses that create or rotate them.
"""
from __future__ import annotations

import base64
import io
import json
import logging
import os
import secrets
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from django.contrib.admin.utils import quote as admin_quote
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import NoReverseMatch, reverse
from rest_framework.test import APIClient

from orgs.models import ApiKey, KeyMode, Org, Role
from orgs.services import api_key_create, api_key_revoke, hash_api_key
from sms.models import ProviderAccount, Send
from tests.factories import MembershipFactory, UserFactory
from tests.fakes.twilio_server import FakeTwilio
from tests.fakes.webhook_receiver import Receiver
from tests.helpers.twilio_signing import sign_twilio_request
from tests.security.surface import api_routes, served_admin_site, webhook_routes

PUBLIC_BASE = "https://hooks.sendora.test"
ARTIFACTS = Path(os.environ.get("SECURITY_ARTIFACTS", "test-artifacts/security"))


class Surfaces:
    """Everything the system showed to anyone during the run, labelled."""

    def __init__(self):
        self.items: list[tuple[str, str]] = []
        self.counts: dict[str, int] = {}

    def add(self, kind: str, label: str, text: str) -> None:
        self.items.append((f"{kind}: {label}", text))
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def response(self, kind: str, label: str, response) -> None:
        headers = "\n".join(f"{k}: {v}" for k, v in response.items())
        body = b"".join(response.streaming_content) if getattr(response, "streaming", False) else response.content
        self.add(kind, f"{label} → {response.status_code}", headers + "\n" + body.decode("utf-8", errors="replace"))


def _find(secrets_: dict[str, str], items) -> list[str]:
    hits = []
    for label, text in items:
        for name, value in secrets_.items():
            if value in text:
                hits.append(f"{name} found in {label}: …{text[max(0, text.find(value) - 80):text.find(value) + 40]!r}…")
    return hits


def _fill(route, org_id, ids):
    values = {"org_id": org_id}
    for name in route.params:
        if name != "org_id":
            values[name] = quote(ids.get(name, "00000000-0000-4000-8000-000000000000"), safe="")
    return route.path(**values)


@pytest.fixture
def debug_logs(caplog):
    """Every logger at DEBUG, and SQL statements with their parameters logged too."""
    caplog.set_level(logging.DEBUG)
    for name in ("django.db.backends", "twilio", "twilio.http_client", "urllib3", "celery", "sms", "orgs", "audit",
                 "sendora_sms", "django.request", "django.security"):
        caplog.set_level(logging.DEBUG, logger=name)
    connection.force_debug_cursor = True
    yield caplog
    connection.force_debug_cursor = False


def test_raw_api_keys_and_auth_tokens_never_leak_anywhere(db, settings, debug_logs, capsys):
    seen = Surfaces()
    settings.SMS_PUBLIC_BASE_URL = PUBLIC_BASE
    token_1 = f"tok1{secrets.token_hex(16)}"
    token_2 = f"tok2{secrets.token_hex(16)}"
    account_sid = "AC" + secrets.token_hex(16)

    with FakeTwilio() as fake:
        fake.add_account(account_sid, token_1, numbers=["+15005550006", "+14155550100"], friendly_name="Secret Co")
        settings.TWILIO_API_BASE_URL = fake.base_url

        # --- operator commands create the org, its credentials and a live key -------------------
        out = io.StringIO()
        call_command("create_org", "Secret Co", "--plan", "growth", "--json", stdout=out)
        seen.add("command", "create_org", out.getvalue())
        org = Org.objects.get(pk=json.loads(out.getvalue())["org_id"])
        out, err = io.StringIO(), io.StringIO()
        call_command("set_twilio_credentials", str(org.pk), "--account-sid", account_sid, "--from", "+15005550006",
                     stdin=io.StringIO(token_1 + "\n"), stdout=out, stderr=err)
        seen.add("command", "set_twilio_credentials", out.getvalue() + err.getvalue())
        out = io.StringIO()
        call_command("create_api_key", str(org.pk), "--role", "admin", "--mode", "prod", "--json", stdout=out)
        creation_output = out.getvalue()  # the one place a raw key may be shown: to its creator, once
        prod_admin_raw = json.loads(creation_output)["key"]

        _, test_admin_raw = api_key_create(org=org, role=Role.ADMIN, mode=KeyMode.TEST)
        _, member_raw = api_key_create(org=org, role=Role.MEMBER, mode=KeyMode.PROD)
        _, publishable_raw = api_key_create(org=org, role=Role.MEMBER, mode=KeyMode.PROD, publishable=True)
        revoked_key, revoked_raw = api_key_create(org=org, role=Role.ADMIN, mode=KeyMode.PROD)
        api_key_revoke(api_key=revoked_key)
        other_org = Org.objects.create(name="Other Co", plan="starter")
        _, other_raw = api_key_create(org=other_org, role=Role.ADMIN, mode=KeyMode.PROD)
        mistyped_raw = prod_admin_raw[:-3] + ("AAA" if not prod_admin_raw.endswith("AAA") else "BBB")
        raw_keys = {"prod admin key": prod_admin_raw, "test admin key": test_admin_raw, "member key": member_raw,
                    "publishable key": publishable_raw, "revoked key": revoked_raw, "other org key": other_raw,
                    "mistyped key": mistyped_raw}

        # --- the API, every route and method, every kind of key, good and bad input --------------
        org_id = str(org.pk)
        sends = []
        for n, (label, raw) in enumerate(raw_keys.items()):
            for header in ({"HTTP_X_API_KEY": raw}, {"HTTP_AUTHORIZATION": f"Bearer {raw}"}):
                client = APIClient(REMOTE_ADDR=f"192.0.2.{n + 1}", **header)
                for body in ({"to": "+15005550006", "body": f"Hello {label}"}, {"to": "not a phone", "body": ""},
                             {"to": "+14155550100", "body": "x", "metadata": {"api_key": "is not here"}}):
                    response = client.post(f"/api/v1/orgs/{org_id}/sms/send", body, format="json",
                                           HTTP_IDEMPOTENCY_KEY=f"idem-{n}-{body['to'][:3]}")
                    seen.response("api", f"POST send as {label}", response)
                    if response.status_code == 202:
                        sends.append(response.json()["id"])
        client = APIClient(HTTP_X_API_KEY=prod_admin_raw)
        client.post(f"/api/v1/orgs/{org_id}/sms/suppressions", {"phone_number": "+14155550111"}, format="json")
        ids = {"send_id": sends[0] if sends else "", "phone": "+14155550111", "phone_number": "+14155550111"}
        for label, raw in raw_keys.items():
            client = APIClient(HTTP_X_API_KEY=raw, REMOTE_ADDR="192.0.2.200")
            for route in api_routes():
                for target in (org_id, str(other_org.pk)):
                    path = _fill(route, target, ids)
                    for method in route.methods:
                        if method == "delete":
                            continue  # keep the suppression for the webhook/admin part
                        response = getattr(client, method)(path, {"to": "+15005550006", "body": "probe"}, format="json")
                        seen.response("api", f"{method.upper()} {path} as {label}", response)
        seen.response("api", "GET /api/schema", APIClient().get("/api/schema"))

        # --- tenant webhooks (issue #15): the whsec_ secret is shown in the creation response and the
        #     rotation response only, then signs deliveries that every other surface must not reveal ------
        settings.WEBHOOKS_ALLOW_HTTP = True
        settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
        receiver = Receiver().start()
        admin_api = APIClient(HTTP_X_API_KEY=prod_admin_raw)
        created = admin_api.post(f"/api/v1/orgs/{org_id}/webhooks", {"url": receiver.base_url + "/hook"},
                                 format="json")
        assert created.status_code == 201, created.content
        endpoint_id, whsec_1 = created.json()["id"], created.json()["secret"]
        rotated = admin_api.post(f"/api/v1/orgs/{org_id}/webhooks/{endpoint_id}/rotate-secret")
        assert rotated.status_code == 200, rotated.content
        whsec_2 = rotated.json()["secret"]
        receiver.secrets["/hook"] = [whsec_2, whsec_1]
        webhook_shown_once = {"webhook create": created.content.decode(), "webhook rotate": rotated.content.decode()}
        seen.response("api", "POST webhook test event",
                      admin_api.post(f"/api/v1/orgs/{org_id}/webhooks/{endpoint_id}/test"))

        # --- the worker: dispatch the live sends through the (fake) Twilio API --------------------
        from sms.services import send_dispatch

        live = list(Send.objects.filter(org=org, mode="prod", status="queued").values_list("pk", flat=True))
        for send_id in live:
            send_dispatch(send_id=send_id)
        assert fake.count_creates() >= 1, "no send reached the provider: the worker path was not exercised"

        # --- Twilio webhooks: signed, unsigned, wrong account -------------------------------------
        dispatched = Send.objects.filter(org=org).exclude(provider_message_id="").first()
        client = APIClient()
        for route in webhook_routes():
            path = route.path(org_id=org_id)
            for fields in (
                {"AccountSid": account_sid, "MessageSid": "SM" + secrets.token_hex(16), "From": "+14155550123",
                 "To": "+15005550006", "Body": body} for body in ("STOP", "START", "HELP", "thanks!")
            ):
                if route.template.endswith("/status") and dispatched is not None:
                    fields.update(MessageSid=dispatched.provider_message_id, MessageStatus="delivered")
                signature = sign_twilio_request(PUBLIC_BASE + path, fields, token_1)
                for sig in (signature, "bogus", None):
                    extra = {"HTTP_X_TWILIO_SIGNATURE": sig} if sig else {}
                    response = client.post(path, urlencode(fields), content_type="application/x-www-form-urlencoded",
                                           **extra)
                    seen.response("webhook", f"POST {path} sig={'ok' if sig == signature else sig}", response)

        # --- tenant webhook deliveries: fan the events out, deliver every message signed, read the log back --
        from sms.models import Event
        from sms.services.events import events_publish
        from sms.tenant_webhooks.models import WebhookMessage
        from sms.tenant_webhooks.services import webhook_deliver

        for event_id in Event.objects.filter(org=org).values_list("pk", flat=True):
            events_publish(event_id=event_id)
        for message_id in WebhookMessage.objects.filter(endpoint_id=endpoint_id).values_list("pk", flat=True):
            webhook_deliver(message_id=message_id)
        receiver.stop()
        assert len(receiver.deliveries) >= 2 and all(d.verified for d in receiver.deliveries), receiver.deliveries
        for path in ("", f"/{endpoint_id}", f"/{endpoint_id}/deliveries"):
            seen.response("api", f"GET webhooks{path}", admin_api.get(f"/api/v1/orgs/{org_id}/webhooks{path}"))
        for delivery in receiver.deliveries:  # what the tenant received: signatures, never the secret
            seen.add("webhook delivery", delivery.headers.get("webhook-id", "?"),
                     "\n".join(f"{k}: {v}" for k, v in delivery.headers.items()) + "\n" + json.dumps(delivery.payload))

        # --- the dashboard, as a superuser and as the org's staff admin ---------------------------
        root = UserFactory(username=f"root_{secrets.token_hex(3)}", is_superuser=True)
        staff = UserFactory(username=f"staff_{secrets.token_hex(3)}")
        MembershipFactory(user=staff, org=org, role=Role.ADMIN)
        site = served_admin_site()
        for user in (root, staff):
            browser = Client()
            browser.force_login(user)
            seen.response("admin", f"index as {user.username}", browser.get(reverse(f"{site.name}:index")))
            for model, model_admin in site._registry.items():
                info = f"{site.name}:{model._meta.app_label}_{model._meta.model_name}"
                for view in ("changelist", "add"):
                    try:
                        seen.response("admin", f"{info}_{view}", browser.get(reverse(f"{info}_{view}")))
                    except NoReverseMatch:
                        pass
                for obj in model._base_manager.all()[:5]:
                    for view in ("change", "history"):
                        try:
                            url = reverse(f"{info}_{view}", args=[admin_quote(obj.pk)])
                        except NoReverseMatch:
                            continue
                        seen.response("admin", url, browser.get(url))
            for name in ("sms_stats_index",):
                try:
                    seen.response("admin", name, browser.get(reverse(f"{site.name}:{name}")))
                    seen.response("admin", "sms_stats", browser.get(reverse(f"{site.name}:sms_stats", args=[org.pk])))
                    seen.response("admin", "sms_cost", browser.get(reverse(f"{site.name}:sms_cost", args=[org.pk])))
                except NoReverseMatch:
                    pass
        # Rotate the token through the dashboard's write-only field; the fake does not know token_2,
        # so the next Twilio calls fail authentication — that error path must not leak either.
        account = ProviderAccount.objects.get(org=org)
        browser = Client()
        browser.force_login(staff)
        change_url = reverse(f"{site.name}:sms_provideraccount_change", args=[account.pk])
        response = browser.post(change_url, {"account_sid": account_sid, "auth_token": token_2,
                                             "from_number": "+15005550006"}, follow=True)
        seen.response("admin", "provider account saved with a new token", response)
        seen.response("admin", "provider account change page", browser.get(change_url))
        try:
            test_url = reverse(f"{site.name}:sms_provideraccount_test_connection", args=[account.pk])
            seen.response("admin", "test connection (auth fails)", browser.post(test_url, follow=True))
        except NoReverseMatch:
            pass
        response = APIClient(HTTP_X_API_KEY=prod_admin_raw).post(
            f"/api/v1/orgs/{org_id}/sms/send", {"to": "+14155550100", "body": "after rotation"}, format="json")
        seen.response("api", "POST send after rotation", response)
        if response.status_code == 202:
            send_dispatch(send_id=response.json()["id"])  # Twilio answers 401: ProviderAuthError path

        # --- remaining operator commands ----------------------------------------------------------
        new_key = base64.b64encode(secrets.token_bytes(32)).decode()
        settings.SMS_ENCRYPTION_KEYS = [new_key, *settings.SMS_ENCRYPTION_KEYS]
        for name, args in (("rotate_encryption_key", ["--json"]), ("rotate_encryption_key", []),
                           ("export_suppressions", [org_id]), ("export_suppressions", [org_id, "--format", "jsonl"])):
            out, err = io.StringIO(), io.StringIO()
            call_command(name, *args, stdout=out, stderr=err)
            seen.add("command", f"{name} {' '.join(args)}", out.getvalue() + err.getvalue())

    # --- collect logs and stray prints -------------------------------------------------------------
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in debug_logs.records:
        seen.add("log", record.name, formatter.format(record) + " " + repr(getattr(record, "args", "")))
    captured = capsys.readouterr()
    seen.add("stdout/stderr", "process", captured.out + captured.err)

    # --- the database: every column of every table, as JSON text --------------------------------
    tables = connection.introspection.table_names()
    rows = 0
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"SELECT row_to_json(t)::text FROM {connection.ops.quote_name(table)} t")
            for (text,) in cursor.fetchall():
                rows += 1
                seen.items.append((f"db: {table}", text))
    # --- Redis (cache, broker queues, the events stream) ------------------------------------------
    redis_values = 0
    import redis

    # The cache, the broker and the events stream are separate Redis databases (issue #10 point 9): scan each.
    urls = {u for u in (settings.REDIS_URL, settings.CELERY_BROKER_URL, settings.SMS_EVENTS_REDIS_URL)
            if u and u.startswith(("redis://", "rediss://"))}
    for url in sorted(urls):
        r = redis.Redis.from_url(url)
        for key in r.scan_iter(count=1000):
            kind = r.type(key).decode()
            if kind == "string":
                value = r.get(key)
            elif kind == "list":
                value = b"\n".join(r.lrange(key, 0, -1))
            elif kind == "hash":
                value = b"\n".join(k + b"=" + v for k, v in r.hgetall(key).items())
            elif kind == "set":
                value = b"\n".join(r.smembers(key))
            elif kind == "zset":
                value = b"\n".join(r.zrange(key, 0, -1))
            elif kind == "stream":
                value = repr(r.xrange(key, count=10_000)).encode()
            else:
                continue
            redis_values += 1
            seen.items.append((f"redis: {key!r}", key.decode(errors="replace") + "\n" + value.decode(errors="replace")))

    # --- the verdict ------------------------------------------------------------------------------
    secrets_ = dict(raw_keys)
    for label, raw in raw_keys.items():
        prefix = ApiKey.objects.filter(key_hash=hash_api_key(raw)).values_list("prefix", flat=True).first()
        if prefix:
            secrets_[f"{label} (after its visible prefix)"] = raw[len(prefix):]
    secrets_["webhook secret 1"] = whsec_1
    secrets_["webhook secret 2"] = whsec_2
    for n, whsec in ((1, whsec_1), (2, whsec_2)):  # the key bytes themselves, as the signer decodes them
        secrets_[f"webhook secret {n} (after whsec_)"] = whsec.removeprefix("whsec_")
    secrets_["auth token 1"] = token_1
    secrets_["auth token 2"] = token_2
    for n, token in ((1, token_1), (2, token_2)):
        secrets_[f"basic auth {n}"] = base64.b64encode(f"{account_sid}:{token}".encode()).decode()
    assert all(len(v) >= 16 for v in secrets_.values()), secrets_.keys()

    leaks = _find(secrets_, seen.items)
    # create_api_key shows its key once, to the operator who asked; nothing else of ours in it.
    leaks += _find({k: v for k, v in secrets_.items() if not k.startswith("prod admin key")},
                   [("command: create_api_key", creation_output)])
    # Each webhook secret is shown once, in its own response; neither response carries anything else secret.
    leaks += _find({k: v for k, v in secrets_.items() if not k.startswith("webhook secret")},
                   list(webhook_shown_once.items()))
    assert not leaks, "\n".join(leaks[:30])

    # The stored forms are the hash and the ciphertext, and they are the right ones.
    for label, raw in raw_keys.items():
        assert ApiKey.objects.filter(key_hash=hash_api_key(raw)).exists() or label == "mistyped key", label
    stored = ProviderAccount.objects.get(org=org)
    assert stored.auth_token() == token_2 and stored.auth_token_encrypted.startswith("v1:")
    # Non-vacuity: every surface was really exercised.
    assert seen.counts.get("api", 0) > 100 and seen.counts.get("webhook", 0) >= 6, seen.counts
    assert seen.counts.get("admin", 0) > 20 and seen.counts.get("log", 0) > 50, seen.counts
    assert seen.counts.get("webhook delivery", 0) >= 2, seen.counts
    assert any("webhookendpoint" in label for label, _ in seen.items if label.startswith("admin")), \
        "the dashboard's webhook endpoint pages were not visited"
    assert any("provider_account" in t or "sms_provideraccount" in t for t in tables)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "secrets.json").write_text(json.dumps({
        "secrets_checked": len(secrets_), "surfaces": seen.counts, "db_tables": len(tables), "db_rows": rows,
        "redis_values": redis_values, "twilio_creates": fake.count_creates(),
        "bytes_scanned": sum(len(t) for _, t in seen.items),
    }, indent=2, sort_keys=True))
