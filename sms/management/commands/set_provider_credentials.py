"""set_provider_credentials ORG_ID --provider twilio|messagebird|sinch … [--priority N] [--disabled] [--json]

  --provider twilio      --account-sid AC… --from +1… [--auth-token …]
  --provider messagebird --originator +1…|Name [--access-key …] [--signing-key …]
  --provider sinch       --service-plan-id … --region us|eu|au|br|ca --from +1… [--api-token …] [--callback-secret …]

A secret flag left out is read from stdin, one line per secret in the order listed above (a hidden prompt
on a terminal), so secrets stay out of shell history; an empty line keeps the stored secret (an update).
Secrets are stored encrypted and never echoed, logged or printed. `set_twilio_credentials` stays as an alias
of the Twilio form.
"""
import getpass
import sys

from django.core.management.base import CommandError

from audit.services import Actor
from sendora_sms.commands import OperatorCommand, org_from_arg
from sms.services.provider_accounts import SECRET_FIELDS, provider_account_set

SENDER_OPTION = {"twilio": "from_number", "messagebird": "originator", "sinch": "from_number"}


class Command(OperatorCommand):
    help = "Set one of an org's provider accounts (Twilio, MessageBird or Sinch); secrets are stored encrypted."
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("org_id", metavar="ORG_ID")
        parser.add_argument("--provider", required=True, choices=sorted(SECRET_FIELDS))
        parser.add_argument("--account-sid", help="Twilio: AC followed by 32 hex characters.")
        parser.add_argument("--from", dest="from_number", help="Twilio / Sinch: the sender number, E.164.")
        parser.add_argument("--originator", help="MessageBird: a number (E.164) or an alphanumeric name (≤ 11).")
        parser.add_argument("--service-plan-id", help="Sinch: the service plan id.")
        parser.add_argument("--region", help="Sinch: us, eu, au, br or ca.")
        for name in sorted({s for fields in SECRET_FIELDS.values() for s in fields}):
            parser.add_argument("--" + name.replace("_", "-"), dest=name,
                                help="Prefer stdin: a secret on the command line lands in shell history.")
        parser.add_argument("--priority", type=int, help="1 is tried first (default 1 for a new account).")
        parser.add_argument("--disabled", action="store_true",
                            help="Store the account disabled (without it, the account is enabled).")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def _secrets(self, provider: str, options) -> dict:
        stream = options.get("stdin") or sys.stdin
        secrets = {}
        for name in SECRET_FIELDS[provider]:
            value = options.get(name)
            if value is not None:
                if not value.strip():
                    raise CommandError(f"--{name.replace('_', '-')} is empty.")
            elif stream.isatty():
                value = getpass.getpass(f"{provider} {name.replace('_', ' ')} (not echoed; empty keeps the stored one): ")
            else:
                value = stream.readline()
            secrets[name] = (value or "").strip()
        return secrets

    def handle(self, *args, **options):
        org = org_from_arg(options["org_id"])
        provider = options["provider"]
        sender = options.get(SENDER_OPTION[provider])
        if not sender:
            raise CommandError(f"--{'originator' if provider == 'messagebird' else 'from'} is required for {provider}.")
        account_id = {"twilio": options.get("account_sid"), "sinch": options.get("service_plan_id")}.get(provider) or ""
        if provider == "twilio" and not account_id:
            raise CommandError("--account-sid is required for twilio.")
        account = provider_account_set(
            org=org, provider=provider, sender=sender, account_id=account_id, region=options.get("region") or "",
            secrets=self._secrets(provider, options), priority=options.get("priority"),
            enabled=not options["disabled"],  # the command states the account's whole routing: enabled unless --disabled
            actor=Actor.system("manage.py set_provider_credentials"))
        result = {"org_id": str(org.pk), "provider": account.provider, "sender": account.from_number,
                  "priority": account.priority, "enabled": account.enabled}
        if account.account_sid:
            result["account_id"] = account.account_sid
        if account.region:
            result["region"] = account.region
        if options["json"]:
            self.write_json(result)
            return
        self.stdout.write(f"{provider} credentials set for org {org.name!r}: sender {account.from_number}, priority "
                          f"{account.priority}, {'enabled' if account.enabled else 'disabled'} (secrets stored encrypted).")
