from sendora_sms.errors import SendoraError


class QuotaExceededError(SendoraError):
    code = "quota_exceeded"
    http_status = 429
    message = "The org's monthly message quota is used up."
