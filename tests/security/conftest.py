"""Fixtures for the security tests: two fully-populated tenants (A and B) whose every visible
value is recorded, so a test can assert that nothing of B's ever shows up in what A is served."""
from __future__ import annotations

import datetime as dt
import secrets
import uuid
from dataclasses import dataclass, field

import pytest

from orgs.models import KeyMode, Role
from sms import crypto
from sms.models import EventType, SendStatusChange
from sms.statuses import SendStatus
from tests.factories import (
    ApiKeyFactory,
    AuditEntryFactory,
    EventFactory,
    InboundMessageFactory,
    MembershipFactory,
    OrgFactory,
    ProviderAccountFactory,
    SendFactory,
    SuppressionFactory,
    UserFactory,
)


@dataclass
class Tenant:
    """One org with one of everything, and the strings that identify it."""

    label: str
    org: object
    admin_key: object
    member_key: object
    auth_token: str
    provider_account: object
    sends: list
    suppressions: list
    inbound: list
    events: list
    audits: list
    staff_user: object
    webhook_endpoints: list = field(default_factory=list)
    webhook_attempts: list = field(default_factory=list)
    links: list = field(default_factory=list)  # short links (sms/links), one on a send, under the org's branded domain
    # MessageBird and Sinch accounts beside Twilio, with the secrets their webhooks are signed with.
    mb_account: object = None
    sinch_account: object = None
    provider_secrets: dict = field(default_factory=dict)
    markers: set[str] = field(default_factory=set)

    @property
    def org_id(self) -> str:
        return str(self.org.pk)

    def object_ids(self) -> dict[str, list[str]]:
        """Path-parameter name → real values of this tenant (what an id-bearing path may carry)."""
        return {
            "send_id": [str(s.pk) for s in self.sends],
            "phone": [s.phone_number for s in self.suppressions],
            "phone_number": [s.phone_number for s in self.suppressions],
            "inbound_id": [str(m.pk) for m in self.inbound],
            "message_id": [str(m.pk) for m in self.inbound],
            "event_id": [str(e.pk) for e in self.events],
            "entry_id": [str(a.pk) for a in self.audits],
            "key_id": [str(self.admin_key.pk), str(self.member_key.pk)],
            "api_key_id": [str(self.admin_key.pk), str(self.member_key.pk)],
            "endpoint_id": [str(e.pk) for e in self.webhook_endpoints],
            "delivery_id": [str(a.pk) for a in self.webhook_attempts],
        }


def _make_tenant(label: str, phone_block: int) -> Tenant:
    tag = secrets.token_hex(4)
    org = OrgFactory(name=f"Tenant {label} {tag}", send_rate_override=100_000, monthly_quota_override=1_000_000)
    auth_token = f"tok{label}{secrets.token_hex(16)}"
    provider_account = ProviderAccountFactory(
        org=org, account_sid=f"AC{secrets.token_hex(16)}", from_number=f"+1415{phone_block}000000"[:12],
        auth_token_encrypted=crypto.encrypt(auth_token, org_id=org.pk))
    phones = [f"+1415{phone_block}{n:06d}"[:12] for n in range(1, 6)]
    sends = []
    for n, status in enumerate([SendStatus.QUEUED, SendStatus.SENT, SendStatus.DELIVERED, SendStatus.FAILED]):
        send = SendFactory(org=org, to=phones[n], body=f"{label}-body-{tag}-{n}", status=status,
                           provider_message_id=f"SM{secrets.token_hex(16)}", metadata={"who": f"{label}-meta-{tag}"})
        SendStatusChange.objects.create(send=send, status=SendStatus.QUEUED, source="api")
        sends.append(send)
    suppressions = [SuppressionFactory(org=org, phone_number=phones[4], reason="manual", source="api")]
    inbound = [InboundMessageFactory(org=org, from_number=phones[1], to_number=provider_account.from_number,
                                     body=f"{label}-reply-{tag}", message_sid=f"SM{secrets.token_hex(16)}")]
    # The tenant's keys are test keys and test keys see only the test world (README "Test and live keys"), so
    # its sends, events and audit entries are test-mode: every list a key can read has the tenant's rows in it.
    events = [
        EventFactory(org=org, type=EventType.SENT, send=sends[1], data={"id": str(sends[1].pk), "to": sends[1].to},
                     mode="test"),
        EventFactory(org=org, type=EventType.REPLIED, inbound=inbound[0], mode="test",
                     data={"id": str(inbound[0].pk), "from": inbound[0].from_number, "body": inbound[0].body}),
    ]
    audits = [AuditEntryFactory(org=org, action="sms.send", resource_type="send", resource_id=str(sends[0].pk),
                                details={"to": sends[0].to, "marker": f"{label}-audit-{tag}"}, mode="test")]
    admin_key = ApiKeyFactory(org=org, role=Role.ADMIN, mode=KeyMode.TEST)
    member_key = ApiKeyFactory(org=org, role=Role.MEMBER, mode=KeyMode.TEST)
    staff_user = UserFactory(username=f"staff_{label.lower()}_{tag}", is_staff=True, is_superuser=False)
    MembershipFactory(user=staff_user, org=org, role=Role.ADMIN)
    from sms.tenant_webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookMessage

    endpoint = WebhookEndpoint.objects.create(org=org, mode=KeyMode.TEST, url=f"https://hooks-{label.lower()}-{tag}.example/",
                                              events=["*"], secret_ciphertext=crypto.encrypt("whsec_AAAA", org_id=org.pk))
    message = WebhookMessage.objects.create(endpoint=endpoint, event=events[0], event_id_public=events[0].pk,
                                            event_type=events[0].type, payload={"id": str(events[0].pk)})
    webhook_attempts = [WebhookAttempt.objects.create(message=message, endpoint=endpoint, attempt=1, status_code=200,
                                                      response_body=f"{label}-hookresp-{tag}")]
    from django.utils import timezone

    from sms.links.models import AppRoute, Link, LinkClick, LinkSettings

    domain = f"go-{label.lower()}-{tag}.example"
    LinkSettings.objects.create(org=org, branded_domain=domain, blocked_hosts=[f"blocked-{label.lower()}-{tag}.example"])
    AppRoute.objects.create(org=org, prefix=f"https://app-{label.lower()}-{tag}.example/", ios_url=f"app{tag}://")
    links = [Link.objects.create(org=org, send=sends[1], mode="test", code=f"{label}{tag}Code"[:22],
                                 url=f"https://target-{label.lower()}-{tag}.example/p?q=1", domain=domain,
                                 short_url=f"https://{domain}/{label}{tag}Code", clicks=1,
                                 expires_at=timezone.now() + dt.timedelta(days=30))]
    LinkClick.objects.create(id=uuid.uuid4(), link=links[0], send=sends[1], kind="click", platform="ios",
                             user_agent=f"{label}-agent-{tag}", clicked_at=timezone.now())
    from audit.services import Actor
    from sms.services.provider_accounts import provider_account_set

    provider_secrets = {"access_key": f"mbak{label}{secrets.token_hex(12)}", "signing_key": f"mbsk{label}{secrets.token_hex(16)}",
                        "api_token": f"snat{label}{secrets.token_hex(12)}", "callback_secret": f"sncs{label}{secrets.token_hex(12)}"}
    mb_account = provider_account_set(org=org, provider="messagebird", sender=f"+1415{phone_block}900001"[:12],
                                      secrets={k: provider_secrets[k] for k in ("access_key", "signing_key")},
                                      priority=2, actor=Actor.system("test"))
    sinch_account = provider_account_set(org=org, provider="sinch", sender=f"+1415{phone_block}900002"[:12],
                                         account_id=f"plan{label}{tag}", region="us", priority=3,
                                         secrets={k: provider_secrets[k] for k in ("api_token", "callback_secret")},
                                         actor=Actor.system("test"))
    tenant = Tenant(label=label, org=org, admin_key=admin_key, member_key=member_key, auth_token=auth_token,
                    provider_account=provider_account, sends=sends, suppressions=suppressions, inbound=inbound,
                    events=events, audits=audits, staff_user=staff_user, webhook_endpoints=[endpoint],
                    webhook_attempts=webhook_attempts, links=links, mb_account=mb_account, sinch_account=sinch_account,
                    provider_secrets=provider_secrets)
    tenant.markers = {
        str(org.pk), org.name, provider_account.account_sid, provider_account.from_number, tag,
        *phones, *(str(s.pk) for s in sends), *(s.body for s in sends), *(s.provider_message_id for s in sends),
        *(str(m.pk) for m in inbound), *(m.message_sid for m in inbound), *(str(e.pk) for e in events),
        str(admin_key.pk), str(member_key.pk), admin_key.prefix, member_key.prefix, staff_user.username,
        str(endpoint.pk), endpoint.url, str(webhook_attempts[0].pk), webhook_attempts[0].response_body,
        domain, *(str(link.pk) for link in links), *(link.code for link in links), *(link.url for link in links),
        f"{label}-agent-{tag}", f"blocked-{label.lower()}-{tag}.example",
        sinch_account.account_sid,
    }
    return tenant


@pytest.fixture
def tenant_a(db) -> Tenant:
    return _make_tenant("A", 3)


@pytest.fixture
def tenant_b(db) -> Tenant:
    return _make_tenant("B", 7)


def leaked(text: str, tenant: Tenant) -> list[str]:
    """The markers of `tenant` that occur in `text` (case-insensitive; phones also without '+')."""
    low = text.lower()
    found = []
    for marker in tenant.markers:
        m = marker.lower()
        if m in low or (m.startswith("+") and m[1:] in low) or (m.startswith("+") and "%2b" + m[1:] in low):
            found.append(marker)
    return sorted(found)
