"""GET /orgs/{org}/sms/providers (secret key, admin): the org's provider accounts, by priority, with their
health and the webhook URLs to paste into each provider's console. Never a secret."""
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from sendora_sms.api.base import SmsApi
from sendora_sms.api.schema import error_responses, list_response
from sms.selectors import provider_accounts_with_health


class _HealthOutput(serializers.Serializer):
    state = serializers.ChoiceField(choices=["healthy", "demoted"])
    demoted_until = serializers.DateTimeField(allow_null=True)
    success_rate = serializers.FloatField(allow_null=True, help_text="0.0–1.0 over the recent window; null: no attempts")


class _WebhookUrls(serializers.Serializer):
    inbound = serializers.CharField()
    status = serializers.CharField()


class ProviderAccountOutput(serializers.Serializer):
    provider = serializers.ChoiceField(choices=["twilio", "messagebird", "sinch"])
    sender = serializers.CharField()
    enabled = serializers.BooleanField()
    priority = serializers.IntegerField(help_text="1 is tried first; ties broken by provider name")
    health = _HealthOutput()
    webhook_urls = _WebhookUrls()


class ProviderListApi(SmsApi):
    admin_only = True

    @extend_schema(
        operation_id="sms_provider_list", tags=["sms"],
        responses={200: list_response(ProviderAccountOutput), **error_responses(
            401, 403, 404, e403="`admin_required`, `secret_key_required` or `plan_upgrade_required`.")},
        description="The org's provider accounts (disabled ones too) by priority, with health and webhook URLs. "
                    "Secrets are never returned.",
    )
    def get(self, request, org_id):
        return Response({"data": provider_accounts_with_health(org=self.org), "next_cursor": None})
