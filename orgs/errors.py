from sendora_sms.errors import SendoraError


class QuotaExceededError(SendoraError):
    code = "quota_exceeded"
    http_status = 429
    message = "The org's monthly message quota is used up."


class SpendCapExceeded(SendoraError):
    """A spend cap (monthly, or the destination country's) would be exceeded (orgs/spend.py)."""

    code = "spend_cap_exceeded"
    http_status = 429
    message = "The org's spend cap for this period is reached."
