from django.urls import path

from sms.webhooks.providers import provider_webhook_urls
from sms.webhooks.twilio import TwilioInboundWebhook, TwilioStatusWebhook

# Mounted at /api/v1/sms/webhooks/ — no trailing slashes (the slash is part of the signed URL).
urlpatterns: list = [
    path("twilio/<str:org_id>", TwilioInboundWebhook.as_view(), name="twilio-inbound"),
    path("twilio/<str:org_id>/status", TwilioStatusWebhook.as_view(), name="twilio-status"),
    *provider_webhook_urls(path),  # messagebird/…, sinch/… (and any provider added to sms/providers.REGISTRY)
]
