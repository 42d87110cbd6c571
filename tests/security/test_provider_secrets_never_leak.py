"""The secrets scan for MessageBird and Sinch (the Twilio/API-key scan is test_secrets_never_leak.py): after
exercising every surface that touches their accounts — set_provider_credentials, sends dispatched through the
fakes (success and refused credentials), signed and unsigned webhooks with replies sent back, the provider
list API, /health, every dashboard page of the accounts with Test connection, rotate_encryption_key — no
access key, signing key, API token or callback secret appears in any response, log line (DEBUG, SQL
included), command output, database column or Redis value; the stored forms are ciphertexts."""
from __future__ import annotations

import base64
import io
import json
import logging
import secrets

import pytest
import redis
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from orgs.models import KeyMode, Org, Role
from orgs.services import api_key_create
from sms.models import InboundMessage, ProviderAccount, Send
from sms.services import send_dispatch
from sms.services.replies import inbound_reply_send
from tests.factories import MembershipFactory, UserFactory
from tests.security.provider_signing import sign
from tests.security.surface import served_admin_site
from tests.security.test_secrets_never_leak import PUBLIC_BASE, Surfaces, _find

pytestmark = pytest.mark.django_db


@pytest.fixture
def debug_logs(caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("django.db.backends", "urllib3", "sms", "orgs", "audit", "sendora_sms", "django.request"):
        caplog.set_level(logging.DEBUG, logger=name)
    connection.force_debug_cursor = True
    yield caplog
    connection.force_debug_cursor = False


def test_messagebird_and_sinch_secrets_never_leak(settings, debug_logs, capsys, fake_messagebird, fake_sinch):
    seen = Surfaces()
    settings.SMS_PUBLIC_BASE_URL = PUBLIC_BASE
    s = {name: f"{name[:4]}{secrets.token_hex(16)}" for name in ("access_key", "signing_key", "api_token",
                                                                  "callback_secret")}
    fake_messagebird.add_account(s["access_key"], s["signing_key"])
    plan = "plan" + secrets.token_hex(8)
    fake_sinch.add_plan(plan, s["api_token"], s["callback_secret"])

    out = io.StringIO()
    call_command("create_org", "Leak Co", "--plan", "growth", "--json", stdout=out)
    org = Org.objects.get(pk=json.loads(out.getvalue())["org_id"])
    for args, stdin in ((["--provider", "messagebird", "--originator", "+15005550010"],
                         f"{s['access_key']}\n{s['signing_key']}\n"),
                        (["--provider", "sinch", "--service-plan-id", plan, "--region", "eu", "--from", "+15005550011",
                          "--priority", "2", "--json"], f"{s['api_token']}\n{s['callback_secret']}\n")):
        out, err = io.StringIO(), io.StringIO()
        call_command("set_provider_credentials", str(org.pk), *args, stdin=io.StringIO(stdin), stdout=out, stderr=err)
        seen.add("command", "set_provider_credentials", out.getvalue() + err.getvalue())
    _, raw = api_key_create(org=org, role=Role.ADMIN, mode=KeyMode.PROD)
    api = APIClient(HTTP_X_API_KEY=raw)

    # Sends: through MessageBird, then failed over to Sinch, then with MessageBird's key refused.
    ids = []
    for n, fault in enumerate((None, 503, 401)):
        fake_messagebird.fail_all(fault)
        response = api.post(f"/api/v1/orgs/{org.pk}/sms/send", {"to": f"+1415555010{n}", "body": f"hi {n}"},
                            format="json")
        seen.response("api", f"send {n}", response)
        ids.append(response.json()["id"])
        send_dispatch(send_id=ids[-1])
    fake_messagebird.fail_all(None)
    assert set(Send.objects.filter(pk__in=ids).values_list("provider", flat=True)) == {"messagebird", "sinch"}
    seen.response("api", "providers", api.get(f"/api/v1/orgs/{org.pk}/sms/providers"))
    seen.response("api", "send detail", api.get(f"/api/v1/orgs/{org.pk}/sms/sends/{ids[0]}"))
    seen.response("health", "/health", Client().get("/health"))

    # Webhooks: signed, unsigned, wrong key; a STOP whose confirmation goes back through the provider API.
    web = APIClient()
    for provider in ("messagebird", "sinch"):
        for kind in ("", "/status"):
            path = f"/api/v1/sms/webhooks/{provider}/{org.pk}{kind}"
            if provider == "messagebird":
                body = (f"id=mo{secrets.token_hex(4)}&originator=14155550123&recipient=15005550010&body=STOP"
                        if not kind else f"id={Send.objects.get(pk=ids[0]).provider_message_id}&status=delivered"
                                         f"&reference={ids[0]}").encode()
                content_type = "application/x-www-form-urlencoded"
            else:
                body = json.dumps({"type": "mo_text", "id": secrets.token_hex(8), "from": "14155550124",
                                   "to": "15005550011", "body": "STOP"} if not kind else {
                    "type": "recipient_delivery_report_sms", "batch_id": Send.objects.get(pk=ids[1]).provider_message_id,
                    "status": "Delivered", "recipient": "14155550101", "code": 0}).encode()
                content_type = "application/json"
            tenant = type("T", (), {"provider_secrets": s})
            for label, extra in (("signed", sign(provider, url=PUBLIC_BASE + path, body=body, tenant=tenant)),
                                 ("unsigned", {}), ("wrong", {"HTTP_MESSAGEBIRD_SIGNATURE_JWT": "x.y.z",
                                                              "HTTP_X_SINCH_WEBHOOK_SIGNATURE": "bogus"})):
                response = web.generic("POST", path, body, content_type=content_type, **extra)
                seen.response("webhook", f"{provider}{kind} {label}", response)
    for inbound in InboundMessage.objects.filter(org=org).exclude(reply_state=""):
        inbound_reply_send(inbound_id=inbound.pk)
    assert InboundMessage.objects.filter(org=org, reply_state="sent").count() == 2

    # The dashboard: list, each account's page, Test connection, a save with blank secrets (keep).
    staff = UserFactory(username=f"staff_{secrets.token_hex(3)}")
    MembershipFactory(user=staff, org=org, role=Role.ADMIN)
    browser = Client()
    browser.force_login(staff)
    site = served_admin_site()
    seen.response("admin", "list", browser.get(reverse(f"{site.name}:sms_provideraccount_changelist")))
    for account in ProviderAccount.objects.filter(org=org):
        url = reverse(f"{site.name}:sms_provideraccount_change", args=[account.pk])
        seen.response("admin", f"{account.provider} page", browser.get(url))
        test = reverse(f"{site.name}:sms_provideraccount_test_connection", args=[account.pk])
        seen.response("admin", f"{account.provider} test", browser.post(test, follow=True))
        data = {"sender": account.from_number, "priority": str(account.priority), "enabled": "1"}
        if account.provider == "sinch":
            data.update(account_id=account.account_sid, region=account.region)
        seen.response("admin", f"{account.provider} save", browser.post(url, data, follow=True))

    new_key = base64.b64encode(secrets.token_bytes(32)).decode()
    settings.SMS_ENCRYPTION_KEYS = [new_key, *settings.SMS_ENCRYPTION_KEYS]
    out = io.StringIO()
    call_command("rotate_encryption_key", "--json", stdout=out)
    seen.add("command", "rotate_encryption_key", out.getvalue())

    for record in debug_logs.records:
        seen.add("log", record.name, record.getMessage() + " " + repr(getattr(record, "args", "")))
    captured = capsys.readouterr()
    seen.add("stdout/stderr", "process", captured.out + captured.err)
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT row_to_json(t)::text FROM {connection.ops.quote_name(table)} t")
            seen.items.extend((f"db: {table}", text) for (text,) in cursor.fetchall())
    for url in {settings.REDIS_URL, settings.CELERY_BROKER_URL} - {None, ""}:
        r = redis.Redis.from_url(url)
        for key in r.scan_iter(count=1000):
            if r.type(key) == b"string":
                seen.items.append((f"redis: {key!r}", key.decode(errors="replace") + (r.get(key) or b"").decode(
                    errors="replace")))

    leaks = _find(s, seen.items)
    assert not leaks, "\n".join(leaks[:20])
    assert seen.counts["webhook"] == 12 and seen.counts["admin"] >= 7
    for account in ProviderAccount.objects.filter(org=org):
        assert account.secrets_encrypted.startswith("v1:") and account.secrets()
