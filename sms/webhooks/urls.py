from django.urls import path

from sms.webhooks.providers import (
    MessageBirdInboundWebhook,
    MessageBirdStatusWebhook,
    SinchInboundWebhook,
    SinchStatusWebhook,
)
from sms.webhooks.twilio import TwilioInboundWebhook, TwilioStatusWebhook

# Mounted at /api/v1/sms/webhooks/ — no trailing slashes (the slash is part of the signed URL).
urlpatterns: list = [
    path("twilio/<str:org_id>", TwilioInboundWebhook.as_view(), name="twilio-inbound"),
    path("twilio/<str:org_id>/status", TwilioStatusWebhook.as_view(), name="twilio-status"),
    path("messagebird/<str:org_id>", MessageBirdInboundWebhook.as_view(), name="messagebird-inbound"),
    path("messagebird/<str:org_id>/status", MessageBirdStatusWebhook.as_view(), name="messagebird-status"),
    path("sinch/<str:org_id>", SinchInboundWebhook.as_view(), name="sinch-inbound"),
    path("sinch/<str:org_id>/status", SinchStatusWebhook.as_view(), name="sinch-status"),
]
