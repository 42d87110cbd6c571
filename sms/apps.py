from django.apps import AppConfig


class SmsConfig(AppConfig):
    name = "sms"
    verbose_name = "SMS"

    def ready(self):
        from sendora_sms import checks  # noqa: F401 — registers Sendora's system checks
