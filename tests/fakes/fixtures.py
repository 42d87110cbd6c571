"""Fixtures of the fake MessageBird and Sinch servers (one each per session, reset for every test) and
helpers that configure an org's account on them through the real service (encrypted secrets)."""
import pytest

from audit.services import Actor
from sms.services.provider_accounts import provider_account_set
from tests.fakes.messagebird_server import FakeMessageBird
from tests.fakes.sinch_server import FakeSinch

MB_ORIGINATOR = "+15005550010"
SINCH_FROM = "+15005550011"


@pytest.fixture(scope="session")
def _fake_messagebird_server():
    with FakeMessageBird() as server:
        yield server


@pytest.fixture(scope="session")
def _fake_sinch_server():
    with FakeSinch() as server:
        yield server


@pytest.fixture
def fake_messagebird(_fake_messagebird_server, settings):
    _fake_messagebird_server.reset()
    settings.MESSAGEBIRD_API_BASE_URL = _fake_messagebird_server.base_url
    yield _fake_messagebird_server
    _fake_messagebird_server.reset()


@pytest.fixture
def fake_sinch(_fake_sinch_server, settings):
    _fake_sinch_server.reset()
    settings.SINCH_API_BASE_URL = _fake_sinch_server.base_url
    yield _fake_sinch_server
    _fake_sinch_server.reset()


def messagebird_account(org, fake: FakeMessageBird, *, priority: int = 1, enabled: bool = True,
                        originator: str = MB_ORIGINATOR):
    access_key, signing_key = fake.add_account()
    return provider_account_set(org=org, provider="messagebird", sender=originator,
                                secrets={"access_key": access_key, "signing_key": signing_key},
                                priority=priority, enabled=enabled, actor=Actor.system("test"))


def sinch_account(org, fake: FakeSinch, *, priority: int = 1, enabled: bool = True, sender: str = SINCH_FROM,
                  region: str = "eu"):
    plan, token, secret = fake.add_plan()
    return provider_account_set(org=org, provider="sinch", sender=sender, account_id=plan, region=region,
                                secrets={"api_token": token, "callback_secret": secret},
                                priority=priority, enabled=enabled, actor=Actor.system("test"))
