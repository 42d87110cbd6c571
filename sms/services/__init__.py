"""The SMS write paths. Callers import from `sms.services`; each area lives in its own module."""
from sms.services.provider_accounts import provider_account_set_twilio, provider_accounts_rotate_encryption  # noqa: F401
