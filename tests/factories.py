"""factory_boy factories for every model. API keys and credentials go through the real services'
helpers, so the stored forms (hash, ciphertext) are the real ones."""
import factory
from django.contrib.auth import get_user_model
from faker import Faker

from audit.models import ActorType, AuditEntry
from orgs.models import ApiKey, KeyMode, Membership, Org, QuotaUsage, Role
from orgs.plans import Plan
from orgs.services import api_key_create
from sms import crypto
from sms.models import (
    Event,
    EventType,
    InboundMessage,
    ProviderAccount,
    Send,
    SendDailyCount,
    SendStatusChange,
    Suppression,
)
from sms.statuses import SendStatus, dispatch_state_for

fake = Faker()

TEST_AUTH_TOKEN = "test_auth_token_0123456789abcdef"


def _phone(n: int) -> str:
    return f"+1415555{n % 10000:04d}"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    is_staff = True
    password = factory.django.Password("correct horse battery staple")


class OrgFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Org

    name = factory.Sequence(lambda n: f"Org {n}")
    plan = Plan.STARTER
    # Tests not about SMS pumping send bursts to one number range (+1555123…); the pumping tests pass
    # pumping_limit=None (the shipped default, SMS_PUMPING_LIMIT) explicitly.
    pumping_limit = 1_000_000


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    org = factory.SubFactory(OrgFactory)
    role = Role.ADMIN


class ApiKeyFactory(factory.django.DjangoModelFactory):
    """Creates through orgs.services.api_key_create; the raw key is on `.raw_key`."""

    class Meta:
        model = ApiKey

    org = factory.SubFactory(OrgFactory)
    role = Role.ADMIN
    mode = KeyMode.TEST
    publishable = False

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        key, raw = api_key_create(org=kwargs["org"], role=kwargs["role"], mode=kwargs["mode"],
                                  publishable=kwargs["publishable"], name=kwargs.get("name", ""))
        key.raw_key = raw
        return key


class ProviderAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProviderAccount

    class Params:
        auth_token = TEST_AUTH_TOKEN

    org = factory.SubFactory(OrgFactory)
    account_sid = factory.Sequence(lambda n: f"AC{n:032x}")
    from_number = "+15005550006"
    auth_token_encrypted = factory.LazyAttribute(lambda o: crypto.encrypt(o.auth_token, org_id=o.org.pk))


class SendFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Send

    org = factory.SubFactory(OrgFactory)
    to = factory.Sequence(_phone)
    from_number = "+15005550006"
    body = factory.Faker("sentence")
    status = SendStatus.QUEUED
    mode = "test"
    provider = "sandbox"
    # As the services would have left it, unless a test says otherwise.
    dispatch_state = factory.LazyAttribute(lambda send: dispatch_state_for(
        status=send.status, provider_message_id=getattr(send, "provider_message_id", "") or "",
        review_reason=getattr(send, "review_reason", "") or ""))


class SendStatusChangeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SendStatusChange

    send = factory.SubFactory(SendFactory)
    status = SendStatus.QUEUED
    source = "api"


class SendDailyCountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SendDailyCount

    org = factory.SubFactory(OrgFactory)
    day = factory.Faker("date_this_month")
    category = "transactional"
    status = SendStatus.DELIVERED
    count = 1
    segments = 1


class SuppressionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Suppression

    org = factory.SubFactory(OrgFactory)
    phone_number = factory.Sequence(lambda n: _phone(5000 + n))
    reason = "manual"
    source = "api"


class InboundMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = InboundMessage

    org = factory.SubFactory(OrgFactory)
    message_sid = factory.Sequence(lambda n: f"SM{n:032x}")
    from_number = factory.Sequence(_phone)
    to_number = "+15005550006"
    body = "Thanks!"


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    org = factory.SubFactory(OrgFactory)
    type = EventType.SENT
    data = factory.Dict({})


class QuotaUsageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = QuotaUsage

    org = factory.SubFactory(OrgFactory)
    period_start = factory.Faker("date_this_month")
    used = 0


class AuditEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AuditEntry

    org = factory.SubFactory(OrgFactory)
    actor_type = ActorType.SYSTEM
    actor_id = "tests"
    action = "test.action"
