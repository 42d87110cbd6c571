"""Benchmark-only baseline endpoint, mounted when SENDORA_BENCH_ENDPOINTS=1 (never in production).

POST /api/v1/bench/orgs/{org_id}/baseline does the floor of what any send must do: the same
auth and permission checks as the SMS API (key lookup, org match, secret key, plan), parse the
JSON body, ONE INSERT of a row comparable to a send (an sms_send row, stored as a terminal
`suppressed` / `bench_baseline` so no worker or sweeper ever touches it), and the same JSON
response. bench/send_api.py measures POST …/sms/send against it in the same run.
"""
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from sendora_sms.api.base import SmsApi
from sms.api.serializers import send_output
from sms.models import Send
from sms.statuses import SendStatus


class BenchBaselineApi(SmsApi):
    @extend_schema(exclude=True)
    def post(self, request, org_id):
        data = request.data if isinstance(request.data, dict) else {}
        send = Send.objects.create(
            org=self.org, api_key=self.api_key, to=str(data.get("to", ""))[:20], body=str(data.get("body", "")),
            status=SendStatus.SUPPRESSED, suppressed_reason="bench_baseline", mode=self.api_key.mode,
        )
        return Response(send_output(send), status=202)  # the send endpoint's renderer


urlpatterns = [path("orgs/<str:org_id>/baseline", BenchBaselineApi.as_view(), name="bench-baseline")]
