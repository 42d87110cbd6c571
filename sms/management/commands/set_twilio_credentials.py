"""set_twilio_credentials ORG_ID --account-sid AC… --from +1… [--auth-token …]

Without --auth-token the token is read from stdin (hidden prompt on a terminal, first line of a
pipe), which keeps it out of shell history. The token is never echoed, logged or printed.
"""
import getpass
import sys

from django.core.management.base import CommandError

from audit.services import Actor
from sendora_sms.commands import OperatorCommand, org_from_arg
from sms.services import provider_account_set_twilio


class Command(OperatorCommand):
    help = "Set an org's Twilio credentials (Account SID, auth token, From number). The token is stored encrypted."
    # call_command(..., stdin=io.StringIO("token\n")) in tests; the CLI uses sys.stdin.
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("org_id", metavar="ORG_ID")
        parser.add_argument("--account-sid", required=True, help="AC followed by 32 hex characters.")
        parser.add_argument("--from", dest="from_number", required=True, help="The From number, E.164 (+1…).")
        parser.add_argument("--auth-token", help="Prefer stdin: a token on the command line lands in shell history.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def _read_token(self, stream) -> str:
        if stream.isatty():
            token = getpass.getpass("Twilio auth token (not echoed): ")
        else:
            token = stream.readline()
        token = (token or "").strip()
        if not token:
            raise CommandError("No auth token given: pass --auth-token or send it on stdin.")
        return token

    def handle(self, *args, **options):
        org = org_from_arg(options["org_id"])
        token = options.get("auth_token")
        if token is not None:
            token = token.strip()
            if not token:
                raise CommandError("--auth-token is empty.")
        else:
            token = self._read_token(options.get("stdin") or sys.stdin)
        account = provider_account_set_twilio(
            org=org,
            account_sid=options["account_sid"],
            from_number=options["from_number"],
            auth_token=token,
            actor=Actor.system("manage.py set_twilio_credentials"),
        )
        result = {"org_id": str(org.pk), "provider": account.provider, "account_sid": account.account_sid,
                  "from_number": account.from_number}
        if options["json"]:
            self.write_json(result)
            return
        self.stdout.write(f"Twilio credentials set for org {org.name!r}: account {account.account_sid}, "
                          f"from {account.from_number} (auth token stored encrypted).")
