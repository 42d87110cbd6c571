"""seed_demo: the demo org that `make run` prints (embedded development setup only).

Creates ONCE, through the real services:
- org "Sendora Demo" on `starter`, with sandbox Twilio credentials (a test Account SID + token,
  From +15005550006 — Twilio's magic "valid" From number);
- an admin `sk_test_` key (sandbox: nothing ever leaves the machine);
- a dashboard superuser `demo` with an owner Membership;
- a little activity so every dashboard page has something to show: delivered, failed and
  duplicate-suppressed sends, a send refused by the suppression list, suppressions (manual and STOP),
  an inbound reply.

Running it again is safe: it finds the same org and user and prints them again. API keys are
stored hashed, so the raw demo key can only be reprinted because it is kept in
./var/demo-credentials.json (mode 0600, development only — like ./var/dev-secrets.json). If that
file is gone or its key was revoked, a fresh demo key is minted and the file rewritten.
"""
import json
import logging
import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.db import transaction

from audit.services import Actor
from orgs.models import KeyMode, Org, Role
from orgs.plans import Plan
from orgs.selectors import api_key_get_by_raw
from orgs.services import api_key_create, membership_set, org_create
from sendora_sms.commands import OperatorCommand
from sms.models import ProviderAccount, Send, SuppressionReason

DEMO_ORG_NAME = "Sendora Demo"
DEMO_USERNAME = "demo"
DEMO_ACCOUNT_SID = "AC" + "de" * 16  # shape of a Twilio test Account SID; the sandbox never calls Twilio
DEMO_FROM = "+15005550006"  # Twilio's magic valid From number
BASE_URL = "http://127.0.0.1:8000"


def credentials_path() -> Path:
    return Path(settings.VAR_DIR) / "demo-credentials.json"


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _save(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class Command(OperatorCommand):
    help = "Create (once) the demo org, sandbox credentials, admin sk_test_ key and dashboard superuser; print them."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the demo credentials as one JSON object.")
        parser.add_argument("--force", action="store_true", help="Run even with DEBUG off (never in production).")

    def handle(self, *args, **options):
        if not settings.DEBUG and not options["force"]:
            raise CommandError("seed_demo is for the embedded development setup (DEBUG on): it creates a superuser "
                               "with a printed password. Pass --force to run it anyway.")
        path = credentials_path()
        saved = _load(path)
        with transaction.atomic():
            org, org_created = self._org(saved)
            self._credentials(org)
            user, password = self._user(saved)
            membership_set(org=org, user=user, role=Role.OWNER)
            key_id, raw_key = self._key(org, saved)
        data = {"org_id": str(org.pk), "org_name": org.name, "plan": org.plan, "api_key": raw_key,
                "api_key_id": key_id, "username": user.username, "password": password,
                "dashboard_url": f"{BASE_URL}/admin/", "docs_url": f"{BASE_URL}/api/docs"}
        _save(path, data)
        activity = self._activity(org, raw_key) if not Send.objects.filter(org=org).exists() else None
        if options["json"]:
            self.write_json(data | {"created": org_created})
            return
        self._print(data, org_created=org_created, activity=activity, path=path)

    # --- the pieces -----------------------------------------------------------------------------------

    def _org(self, saved: dict) -> tuple[Org, bool]:
        org = None
        if saved.get("org_id"):
            org = Org.objects.filter(pk=saved["org_id"]).first()
        if org is None:  # credentials file lost: the demo org is the one the demo user owns
            org = (Org.objects.filter(name=DEMO_ORG_NAME, memberships__user__username=DEMO_USERNAME,
                                      memberships__role=Role.OWNER).order_by("created_at").first())
        if org is not None:
            return org, False
        return org_create(name=DEMO_ORG_NAME, plan=Plan.STARTER), True

    def _credentials(self, org: Org) -> None:
        if ProviderAccount.objects.filter(org=org).exists():
            return
        from sms.services import provider_account_set_twilio

        provider_account_set_twilio(org=org, account_sid=DEMO_ACCOUNT_SID, from_number=DEMO_FROM,
                                    auth_token=secrets.token_hex(16), actor=Actor.system("seed_demo"))

    def _user(self, saved: dict):
        user_model = get_user_model()
        user = user_model.objects.filter(username=DEMO_USERNAME).first()
        password = saved.get("password")
        if user is None:
            password = password or secrets.token_urlsafe(12)
            user = user_model.objects.create_superuser(DEMO_USERNAME, "demo@example.com", password)
        elif not password or not user.check_password(password):
            password = secrets.token_urlsafe(12)  # lost or changed: reset, and print the new one
            user.set_password(password)
            user.save(update_fields=["password"])
        return user, password

    def _key(self, org: Org, saved: dict) -> tuple[str, str]:
        raw = saved.get("api_key") or ""
        key = api_key_get_by_raw(raw) if raw else None
        if key is not None and key.org_id == org.pk:
            return str(key.pk), raw
        key, raw = api_key_create(org=org, role=Role.ADMIN, mode=KeyMode.TEST, name="demo (make run)")
        return str(key.pk), raw

    def _activity(self, org: Org, raw_key: str) -> dict:
        """A few sends, suppressions and replies through the real services (sandbox: no network)."""
        from sms.providers.base import InboundSms
        from sms.services import send_create, suppression_create
        from sms.services.inbound import inbound_handle

        for name, level in (("celery", logging.WARNING), ("sms", logging.WARNING), ("kombu", logging.ERROR)):
            logging.getLogger(name).setLevel(level)  # in-process tasks would log every step of the demo
        api_key = api_key_get_by_raw(raw_key)
        system = Actor.system("seed_demo")
        suppression_create(org=org, phone_number="+15551230000", reason=SuppressionReason.MANUAL, source="admin",
                           actor=system)
        sends = [
            ("+15551234567", "Your Sendora demo code is 482910", "transactional"),
            ("+15551234568", "Spring sale: 20% off this weekend. Reply STOP to opt out.", "marketing"),
            ("+15005550001", "This one fails: Twilio's magic invalid number", "transactional"),
            ("+15551230000", "Never sent: this number is on the suppression list", "transactional"),
            ("+15551234567", "Your Sendora demo code is 482910", "transactional"),  # duplicate within 60 s
        ]
        statuses = []
        for to, body, category in sends:
            try:
                result = send_create(org=org, api_key=api_key, to=to, body=body, category=category,
                                     metadata={"demo": True})
            except Exception as exc:  # noqa: BLE001 — demo data is best effort; the demo org is still usable
                self.stderr.write(f"demo send to {to} skipped: {exc}")
                continue
            result.send.refresh_from_db()
            statuses.append(result.send.status)
        inbound = [("+15551234567", "Thanks, got it!"), ("+15551239999", "STOP")]
        for n, (from_number, body) in enumerate(inbound):
            inbound_handle(org=org, message=InboundSms(
                message_id=f"SMdemo{n:026d}", account_id=DEMO_ACCOUNT_SID, from_number=from_number,
                to_number=DEMO_FROM, body=body))
        return {"sends": statuses, "inbound": len(inbound)}

    def _print(self, data: dict, *, org_created: bool, activity: dict | None, path: Path) -> None:
        w = self.stdout.write
        w("")
        w("Sendora SMS demo " + ("(created)" if org_created else "(already set up; same org and user)"))
        w(f"  Org        {data['org_name']}  {data['org_id']}  (plan {data['plan']})")
        w(f"  API key    {data['api_key']}  (admin, sandbox: nothing leaves this machine)")
        w(f"  Dashboard  {data['dashboard_url']}  user {data['username']} / password {data['password']}")
        w(f"  API docs   {data['docs_url']}")
        if activity:
            w(f"  Demo data  sends: {', '.join(activity['sends'])}; {activity['inbound']} inbound messages")
        w("  Try it:")
        w(f"    curl -s {BASE_URL}/api/v1/orgs/{data['org_id']}/sms/send -H 'x-api-key: {data['api_key']}' "
          "-d '{\"to\": \"+15551234567\", \"body\": \"Hello from Sendora\"}'")
        w(f"  (saved in {path}, mode 0600, development only)")
        w("")
