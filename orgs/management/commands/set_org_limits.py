"""set_org_limits ORG_ID [--countries US,CA] [--monthly-spend-cap 250.00] [--country-cap GB=20]
[--pumping-limit N] [--json]

--countries replaces the allowed destination list (ISO 3166-1 alpha-2); --monthly-spend-cap and
--country-cap take USD amounts with up to 4 decimal places, or `none` to remove the cap; --country-cap
may be repeated (or comma-separated: GB=20,FR=10); --pumping-limit is sends per hour to one number
range (`none`: the default). Without changes it prints the current limits. Every change is audited.
"""
from django.core.management.base import CommandError

from audit.services import Actor
from orgs.services import UNSET, org_limits, org_limits_set
from sendora_sms.commands import OperatorCommand, int_option, org_from_arg

NONE_WORDS = ("none", "off", "")


class Command(OperatorCommand):
    help = "Set an org's allowed destination countries, spend caps and pumping limit (README \"Cost and countries\")."

    def add_arguments(self, parser):
        parser.add_argument("org_id", metavar="ORG_ID")
        parser.add_argument("--countries", help="Allowed destination countries, e.g. US,CA (replaces the list).")
        parser.add_argument("--monthly-spend-cap", help="USD per calendar month, e.g. 250.00; `none` removes it.")
        parser.add_argument("--country-cap", action="append", default=[],
                            help="CC=USD per month, e.g. GB=20 (repeatable); CC=none removes it.")
        parser.add_argument("--pumping-limit", help="Sends per hour to one number range; `none`: the default.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object with the resulting limits.")

    def handle(self, *args, **options):
        org = org_from_arg(options["org_id"])
        limits: dict = {}
        if options["countries"] is not None:
            codes = [c.strip() for c in options["countries"].split(",") if c.strip()]
            if not codes:
                raise CommandError("--countries needs at least one country code, e.g. --countries US,CA.")
            limits["countries"] = codes
        cap = options["monthly_spend_cap"]
        if cap is not None:
            limits["monthly_spend_cap"] = None if cap.strip().lower() in NONE_WORDS else cap
        caps = {}
        for raw in options["country_cap"]:
            for item in raw.split(","):
                code, sep, value = item.partition("=")
                if not sep or not code.strip():
                    raise CommandError(f"--country-cap expects CC=AMOUNT (e.g. GB=20), got {item!r}.")
                caps[code.strip().upper()] = None if value.strip().lower() in NONE_WORDS else value.strip()
        if caps:
            limits["country_caps"] = caps
        pumping = options["pumping_limit"]
        if pumping is not None:
            limits["pumping_limit"] = (None if pumping.strip().lower() in NONE_WORDS
                                       else int_option(pumping, name="--pumping-limit", minimum=1, maximum=1_000_000))
        if limits:
            org = org_limits_set(org=org, actor=Actor.system("manage.py set_org_limits"),
                                 **{k: limits.get(k, UNSET) for k in limits})
        result = org_limits(org)
        if options["json"]:
            self.write_json(result)
            return
        caps_text = ", ".join(f"{k} {v}" for k, v in result["country_caps"].items()) or "none"
        self.stdout.write(f"Limits of org {org.name!r} ({org.pk}):")
        self.stdout.write(f"  countries: {', '.join(result['countries'])}")
        self.stdout.write(f"  monthly spend cap: {result['monthly_spend_cap'] or 'none'} USD; country caps: {caps_text}")
        self.stdout.write(f"  pumping limit: {result['pumping_limit']} sends per hour per number range")
