"""Operator commands (the API contract (README.md, /api/schema) "Operator interface"): happy paths, --json, and bad input as one line + non-zero exit."""
import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit.models import AuditEntry
from orgs.models import ApiKey, Org
from orgs.selectors import api_key_get_by_raw
from sms.models import ProviderAccount

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
SID = "AC" + "0123456789abcdef" * 2
TOKEN = "tok_0123456789abcdef0123456789ab"


def run(name, *args, **kwargs) -> str:
    out = io.StringIO()
    call_command(name, *args, stdout=out, stderr=io.StringIO(), **kwargs)
    return out.getvalue()


# --- create_org ------------------------------------------------------------------------------------

def test_create_org_json_prints_only_the_org_id_and_creates_the_org():
    data = json.loads(run("create_org", "Acme Inc", "--plan", "starter", "--json"))
    assert list(data) == ["org_id"]
    org = Org.objects.get(pk=data["org_id"])
    assert (org.name, org.plan, org.monthly_quota, org.send_rate) == ("Acme Inc", "starter", 5000, 10)


def test_create_org_quota_and_rate_override_the_plan():
    data = json.loads(run("create_org", "Big", "--plan", "growth", "--quota", "123", "--rate", "7", "--json"))
    org = Org.objects.get(pk=data["org_id"])
    assert (org.plan, org.monthly_quota, org.send_rate) == ("growth", 123, 7)


def test_create_org_without_json_prints_a_human_summary_with_the_id():
    out = run("create_org", "Human", "--plan", "enterprise")
    org = Org.objects.get(name="Human")
    assert str(org.pk) in out and "enterprise" in out


@pytest.mark.parametrize("args, fragment", [
    (["X", "--plan", "gold"], "Unknown plan 'gold'"),
    (["X", "--plan", "starter", "--quota", "-1"], "--quota must be at least 0"),
    (["X", "--plan", "starter", "--rate", "fast"], "--rate must be a whole number"),
    (["X", "--plan", "starter", "--quota", "99999999999"], "--quota must be at most"),
    (["   ", "--plan", "starter"], "must not be empty"),
    (["N" * 201, "--plan", "starter"], "at most 200 characters"),
    (["X"], "--plan"),
])
def test_create_org_bad_input_is_a_command_error_and_creates_nothing(args, fragment):
    with pytest.raises(CommandError) as exc:
        run("create_org", *args)
    assert fragment in str(exc.value)
    assert "\n" not in str(exc.value)
    assert not Org.objects.exists()


# --- create_api_key ---------------------------------------------------------------------------------

def test_create_api_key_json_returns_a_working_prod_secret_key_by_default(org):
    data = json.loads(run("create_api_key", str(org.pk), "--role", "admin", "--json"))
    assert sorted(data) == ["id", "key"]
    assert data["key"].startswith("sk_prod_")
    key = api_key_get_by_raw(data["key"])
    assert str(key.pk) == data["id"] and key.org == org and key.is_admin and not key.publishable
    # Stored hashed: the raw key is nowhere in the row.
    row = ApiKey.objects.filter(pk=data["id"]).values().get()
    assert data["key"] not in json.dumps(row, default=str)


@pytest.mark.parametrize("extra, prefix", [
    (["--mode", "test"], "sk_test_"),
    (["--mode", "prod", "--publishable"], "pk_prod_"),
    (["--mode", "test", "--publishable"], "pk_test_"),
])
def test_create_api_key_modes_and_publishable(org, extra, prefix):
    data = json.loads(run("create_api_key", str(org.pk), "--role", "member", *extra, "--json"))
    assert data["key"].startswith(prefix)
    assert ApiKey.objects.get(pk=data["id"]).role == "member"


def test_create_api_key_human_output_shows_the_key_once(org):
    out = run("create_api_key", str(org.pk), "--role", "admin", "--mode", "test")
    raw = next(line for line in out.splitlines() if line.startswith("sk_test_"))
    assert api_key_get_by_raw(raw).org == org


@pytest.mark.parametrize("org_arg, extra, fragment", [
    ("not-a-uuid", ["--role", "admin"], "not a valid org id"),
    (str(uuid.uuid4()), ["--role", "admin"], "No org with id"),
    (None, ["--role", "owner"], "role must be admin or member"),
    (None, ["--role", "admin", "--mode", "live"], "mode must be prod or test"),
    (None, [], "--role"),
])
def test_create_api_key_bad_input_is_a_command_error(org, org_arg, extra, fragment):
    with pytest.raises(CommandError) as exc:
        run("create_api_key", org_arg or str(org.pk), *extra)
    assert fragment in str(exc.value)
    assert not ApiKey.objects.exists()


# --- set_twilio_credentials ---------------------------------------------------------------------------

def test_set_twilio_credentials_reads_the_token_from_stdin_and_never_prints_it(org):
    out = run("set_twilio_credentials", str(org.pk), "--account-sid", SID, "--from", "+1 (500) 555-0006",
              stdin=io.StringIO(TOKEN + "\n"))
    assert TOKEN not in out
    account = ProviderAccount.objects.get(org=org)
    assert (account.account_sid, account.from_number) == (SID, "+15005550006")
    assert account.auth_token() == TOKEN
    assert TOKEN not in account.auth_token_encrypted
    entry = AuditEntry.objects.get(org=org, action="provider_account.set")
    assert TOKEN not in json.dumps(entry.details) and entry.actor_type == "system"


def test_set_twilio_credentials_with_auth_token_option_and_json_updates_in_place(org):
    run("set_twilio_credentials", str(org.pk), "--account-sid", SID, "--from", "+15005550006", "--auth-token", "first")
    data = json.loads(run("set_twilio_credentials", str(org.pk), "--account-sid", SID, "--from", "+15005550001",
                          "--auth-token", TOKEN, "--json"))
    assert data == {"org_id": str(org.pk), "provider": "twilio", "account_sid": SID, "from_number": "+15005550001"}
    assert ProviderAccount.objects.get(org=org).auth_token() == TOKEN
    assert ProviderAccount.objects.count() == 1


@pytest.mark.parametrize("org_arg, sid, from_number, stdin, fragment", [
    ("nope", SID, "+15005550006", TOKEN, "not a valid org id"),
    (str(uuid.uuid4()), SID, "+15005550006", TOKEN, "No org with id"),
    (None, "AC123", "+15005550006", TOKEN, "Account SID must be 'AC' followed by 32"),
    (None, "SK" + "0" * 32, "+15005550006", TOKEN, "Account SID"),
    (None, SID, "not a number", TOKEN, "From number is not a valid phone number"),
    (None, SID, "+1555", TOKEN, "From number"),
    (None, SID, "+15005550006", "", "No auth token given"),
    (None, SID, "+15005550006", "   \n", "No auth token given"),
])
def test_set_twilio_credentials_bad_input_is_a_command_error(org, org_arg, sid, from_number, stdin, fragment):
    with pytest.raises(CommandError) as exc:
        run("set_twilio_credentials", org_arg or str(org.pk), "--account-sid", sid, "--from", from_number,
            stdin=io.StringIO(stdin))
    assert fragment in str(exc.value)
    assert TOKEN not in str(exc.value)
    assert not ProviderAccount.objects.exists()


def test_set_twilio_credentials_empty_auth_token_option_is_refused(org):
    with pytest.raises(CommandError, match="--auth-token is empty"):
        run("set_twilio_credentials", str(org.pk), "--account-sid", SID, "--from", "+15005550006", "--auth-token", " ")


# --- rotate_encryption_key -----------------------------------------------------------------------------

def test_rotate_encryption_key_json_reports_counts(provider_account, settings):
    new_key = "bmV3LWtleS1uZXctbmV3LWtleS1uZXctbmV3LWtleSE="  # 32 bytes
    settings.SMS_ENCRYPTION_KEYS = [new_key, *settings.SMS_ENCRYPTION_KEYS]
    assert json.loads(run("rotate_encryption_key", "--json")) == {"rotated": 1, "unchanged": 0, "total": 1}
    assert json.loads(run("rotate_encryption_key", "--json")) == {"rotated": 0, "unchanged": 1, "total": 1}


def test_rotate_encryption_key_with_the_old_key_missing_is_a_command_error(provider_account, settings):
    old_ciphertext = provider_account.auth_token_encrypted
    settings.SMS_ENCRYPTION_KEYS = ["bmV3LWtleS1uZXctbmV3LWtleS1uZXctbmV3LWtleSE="]
    with pytest.raises(CommandError, match="cannot be decrypted.*SMS_ENCRYPTION_KEYS"):
        run("rotate_encryption_key")
    provider_account.refresh_from_db()
    assert provider_account.auth_token_encrypted == old_ciphertext


# --- through the real CLI: exit codes and stderr ---------------------------------------------------------

def _cli_env() -> dict:
    """The subprocess talks to this test run's database (committed data: transactional tests only)."""
    db = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if connection.vendor == "postgresql":
        auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
        env["DATABASE_URL"] = f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    else:
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    env["SMS_ENCRYPTION_KEYS"] = ",".join(settings.SMS_ENCRYPTION_KEYS)
    env.setdefault("SECRET_KEY", "cli-test-secret")
    return env


def cli(*args, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=_cli_env(), input=stdin,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.django_db(transaction=True)
def test_cli_happy_path_prints_one_json_object_and_exits_zero():
    created = cli("create_org", "CLI Org", "--plan", "starter", "--json")
    assert created.returncode == 0, created.stderr
    org_id = json.loads(created.stdout)["org_id"]
    key = cli("create_api_key", org_id, "--role", "admin", "--mode", "test", "--json")
    assert key.returncode == 0, key.stderr
    assert json.loads(key.stdout)["key"].startswith("sk_test_")
    creds = cli("set_twilio_credentials", org_id, "--account-sid", SID, "--from", "+15005550006", stdin=TOKEN + "\n")
    assert creds.returncode == 0, creds.stderr
    assert TOKEN not in creds.stdout + creds.stderr
    assert ProviderAccount.objects.get(org_id=org_id).auth_token() == TOKEN


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("args, stdin, fragment", [
    (["create_org", "X", "--plan", "platinum"], "", "Unknown plan"),
    (["create_org", "X", "--plan", "starter", "--quota", "-5"], "", "--quota must be at least 0"),
    (["create_org", "X"], "", "--plan"),
    (["create_api_key", "1234", "--role", "admin"], "", "not a valid org id"),
    (["create_api_key", str(uuid.UUID(int=1)), "--role", "admin"], "", "No org with id"),
    (["set_twilio_credentials", str(uuid.UUID(int=1)), "--account-sid", SID, "--from", "+15005550006"], "",
     "No org with id"),
])
def test_cli_bad_input_is_one_line_on_stderr_with_a_nonzero_exit(args, stdin, fragment):
    result = cli(*args, stdin=stdin)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("CommandError: ") and fragment in lines[0]
    assert result.stdout == ""


@pytest.mark.django_db(transaction=True)
def test_cli_set_twilio_credentials_with_empty_stdin_fails_without_traceback(org):
    result = cli("set_twilio_credentials", str(org.pk), "--account-sid", SID, "--from", "+15005550006", stdin="")
    assert result.returncode == 1
    assert result.stderr.strip() == "CommandError: No auth token given: pass --auth-token or send it on stdin."
    assert not ProviderAccount.objects.exists()
