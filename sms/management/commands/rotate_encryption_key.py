"""rotate_encryption_key: re-encrypt every stored credential under the newest key.

Rotation procedure (README, "Rotating the encryption key"):
1. put a new key FIRST in SMS_ENCRYPTION_KEYS, keep the old ones after it; restart;
2. run this command; 3. drop the old keys from SMS_ENCRYPTION_KEYS; restart.
"""
from django.core.management.base import CommandError

from sendora_sms.commands import OperatorCommand
from sms import crypto
from sms.services import provider_accounts_rotate_encryption


class Command(OperatorCommand):
    help = "Re-encrypt every stored provider credential under the newest key in SMS_ENCRYPTION_KEYS."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the counts as one JSON object.")

    def handle(self, *args, **options):
        try:
            result = provider_accounts_rotate_encryption()
        except crypto.DecryptionError as exc:
            raise CommandError(
                f"A stored credential cannot be decrypted ({exc}); add the key it was encrypted with to "
                "SMS_ENCRYPTION_KEYS (after the newest) and run again. Credentials already rotated stay rotated."
            ) from None
        if options["json"]:
            self.write_json(result)
            return
        self.stdout.write(f"Re-encrypted {result['rotated']} credential(s) under key "
                          f"{crypto.newest_key_id()}; {result['unchanged']} already used it.")
