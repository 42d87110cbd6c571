"""set_org_limits (README "Cost and countries", issue #16 point 5): --json shape, replace/merge semantics, Decimal
amounts, audit, and bad input as one line + non-zero exit (like the other operator commands)."""
import json
import uuid
from decimal import Decimal

import pytest
from django.core.management.base import CommandError

from audit.models import AuditEntry
from orgs.models import Org
from tests.commands.test_foundation_commands import cli, run

pytestmark = pytest.mark.django_db


def test_json_prints_the_resulting_limits(org):
    data = json.loads(run("set_org_limits", str(org.pk), "--countries", "us,CA", "--monthly-spend-cap", "250.00",
                          "--country-cap", "GB=20", "--country-cap", "FR=1.5", "--pumping-limit", "40", "--json"))
    assert data == {"org_id": str(org.pk), "countries": ["US", "CA"], "monthly_spend_cap": "250",
                    "country_caps": {"FR": "1.5", "GB": "20"}, "pumping_limit": 40}
    org.refresh_from_db()
    assert org.monthly_spend_cap == Decimal("250.0000") and org.pumping_limit == 40
    entry = AuditEntry.objects.get(org=org, action="org.limits_update")
    assert entry.details["changes"]["allowed_countries"] == {"from": [], "to": ["US", "CA"]}


def test_countries_replace_the_list_caps_merge_and_none_removes():
    org = Org.objects.create(name="Limits", allowed_countries=["US", "CA"], country_spend_caps={"GB": "20"})
    data = json.loads(run("set_org_limits", str(org.pk), "--countries", "GB", "--country-cap", "FR=5,GB=none",
                          "--monthly-spend-cap", "none", "--pumping-limit", "none", "--json"))
    assert data["countries"] == ["GB"] and data["country_caps"] == {"FR": "5"}
    assert data["monthly_spend_cap"] is None and data["pumping_limit"] == 15  # the default (SMS_PUMPING_LIMIT)


def test_without_changes_it_prints_the_limits_and_audits_nothing(org):
    out = run("set_org_limits", str(org.pk))
    assert "countries: US" in out and "pumping limit" in out
    assert not AuditEntry.objects.filter(org=org, action="org.limits_update").exists()


@pytest.mark.parametrize(("args", "fragment"), [
    (["--countries", "US,XX"], "not an ISO 3166-1 alpha-2"),
    (["--countries", ","], "at least one country"),
    (["--monthly-spend-cap", "1.23456"], "at most 4 decimal places"),
    (["--monthly-spend-cap", "-1"], "at least 0"),
    (["--monthly-spend-cap", "ten"], "decimal amount"),
    (["--country-cap", "GB"], "CC=AMOUNT"),
    (["--country-cap", "ZZ=5"], "not an ISO 3166-1 alpha-2"),
    (["--pumping-limit", "0"], "at least 1"),
    (["--pumping-limit", "many"], "whole number"),
])
def test_bad_input_is_a_command_error(org, args, fragment):
    with pytest.raises(CommandError, match=fragment):
        run("set_org_limits", str(org.pk), *args)
    assert not AuditEntry.objects.filter(org=org, action="org.limits_update").exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("args", "fragment"), [
    (["set_org_limits", "1234"], "not a valid org id"),
    (["set_org_limits", str(uuid.UUID(int=1)), "--countries", "US"], "No org with id"),
])
def test_cli_bad_input_is_one_line_on_stderr(args, fragment):
    result = cli(*args)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert len(lines) == 1 and lines[0].startswith("CommandError: ") and fragment in lines[0]
