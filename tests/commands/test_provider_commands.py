"""set_provider_credentials for every provider (secrets from stdin, encrypted, never printed) and
rotate_encryption_key over every provider's secrets."""
import base64
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from sms import crypto
from sms.models import ProviderAccount

pytestmark = pytest.mark.django_db

SID = "AC" + "a" * 32


def run(*args, stdin=""):
    out = io.StringIO()
    call_command("set_provider_credentials", *args, stdout=out, stderr=io.StringIO(), stdin=io.StringIO(stdin))
    return out.getvalue()


def test_messagebird_secrets_from_stdin_in_order_encrypted_and_never_printed(org):
    out = run(str(org.pk), "--provider", "messagebird", "--originator", "Sendora", "--priority", "2", "--json",
              stdin="mb-access-key-1\nmb-signing-key-1\n")
    assert json.loads(out) == {"org_id": str(org.pk), "provider": "messagebird", "sender": "Sendora",
                               "priority": 2, "enabled": True}
    account = ProviderAccount.objects.get(org=org, provider="messagebird")
    assert account.secrets() == {"access_key": "mb-access-key-1", "signing_key": "mb-signing-key-1"}
    assert "mb-access-key-1" not in account.secrets_encrypted and "mb-" not in out
    # An update: an empty line keeps the stored secret, a flag replaces it; --disabled.
    run(str(org.pk), "--provider", "messagebird", "--originator", "+1 500 555 0010", "--signing-key", "mb-signing-2",
        "--disabled", stdin="\n")
    account.refresh_from_db()
    assert account.secrets() == {"access_key": "mb-access-key-1", "signing_key": "mb-signing-2"}
    assert (account.from_number, account.enabled) == ("+15005550010", False)
    run(str(org.pk), "--provider", "messagebird", "--originator", "Sendora", stdin="\n\n")  # without --disabled
    account.refresh_from_db()
    assert account.enabled and account.priority == 2 and account.secrets()["signing_key"] == "mb-signing-2"


def test_sinch_and_twilio_forms(org):
    out = run(str(org.pk), "--provider", "sinch", "--service-plan-id", "plan123", "--region", "EU", "--from",
              "+15005550011", "--json", stdin="tok\nsecret\n")
    assert json.loads(out)["region"] == "eu" and json.loads(out)["account_id"] == "plan123"
    assert ProviderAccount.objects.get(org=org, provider="sinch").secrets() == {"api_token": "tok",
                                                                                 "callback_secret": "secret"}
    run(str(org.pk), "--provider", "twilio", "--account-sid", SID, "--from", "+15005550006", stdin="twilio-token\n")
    assert ProviderAccount.objects.get(org=org, provider="twilio").auth_token() == "twilio-token"
    assert ProviderAccount.objects.filter(org=org).count() == 2


@pytest.mark.parametrize("args, stdin, fragment", [
    (["--provider", "sinch", "--service-plan-id", "p", "--region", "mars", "--from", "+15005550011"], "a\nb\n", "region"),
    (["--provider", "sinch", "--service-plan-id", "p", "--region", "us", "--from", "+15005550011"], "a\n", "callback_secret"),
    (["--provider", "messagebird", "--originator", "far-too-long-name"], "a\nb\n", "phone number"),
    (["--provider", "messagebird"], "a\nb\n", "--originator"),
    (["--provider", "twilio", "--from", "+15005550006"], "t\n", "--account-sid"),
])
def test_bad_input_is_one_command_error(org, args, stdin, fragment):
    with pytest.raises(CommandError) as caught:
        run(str(org.pk), *args, stdin=stdin)
    assert fragment in str(caught.value)
    assert not ProviderAccount.objects.filter(org=org).exists()


def test_rotate_encryption_key_covers_every_providers_secrets(org, settings):
    run(str(org.pk), "--provider", "messagebird", "--originator", "Sendora", stdin="ak\nsk\n")
    run(str(org.pk), "--provider", "sinch", "--service-plan-id", "p1", "--region", "us", "--from", "+15005550011",
        stdin="tok\ncs\n")
    run(str(org.pk), "--provider", "twilio", "--account-sid", SID, "--from", "+15005550006", stdin="tt\n")
    old = crypto.newest_key_id()
    new_key = base64.b64encode(b"n" * 32).decode()
    settings.SMS_ENCRYPTION_KEYS = [new_key, *settings.SMS_ENCRYPTION_KEYS]
    out = io.StringIO()
    call_command("rotate_encryption_key", stdout=out, stderr=io.StringIO())
    accounts = {a.provider: a for a in ProviderAccount.objects.filter(org=org)}
    for account in accounts.values():
        for stored in filter(None, [account.auth_token_encrypted, account.secrets_encrypted]):
            assert stored.split(":")[1] == crypto.newest_key_id() != old
    settings.SMS_ENCRYPTION_KEYS = [new_key]  # the old key gone: everything still decrypts
    assert accounts["messagebird"].secrets() == {"access_key": "ak", "signing_key": "sk"}
    assert accounts["sinch"].secrets() == {"api_token": "tok", "callback_secret": "cs"}
    assert accounts["twilio"].auth_token() == "tt"


def test_secrets_are_bound_to_their_org_and_provider(org, other_org):
    run(str(org.pk), "--provider", "messagebird", "--originator", "Sendora", stdin="ak\nsk\n")
    run(str(org.pk), "--provider", "sinch", "--service-plan-id", "p1", "--region", "us", "--from", "+15005550011",
        stdin="tok\ncs\n")
    mb = ProviderAccount.objects.get(org=org, provider="messagebird")
    sinch = ProviderAccount.objects.get(org=org, provider="sinch")
    sinch.secrets_encrypted = mb.secrets_encrypted  # copied onto another provider's account of the same org
    with pytest.raises(crypto.DecryptionError):
        sinch.secrets()
    mb.org_id = other_org.pk  # or onto another org
    with pytest.raises(crypto.DecryptionError):
        mb.secrets()
