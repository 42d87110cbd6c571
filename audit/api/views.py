from drf_spectacular.utils import OpenApiParameter, extend_schema

from audit.api.serializers import AuditEntryOutput
from audit.selectors import audit_entry_list
from sendora_sms.api.base import OrgApi
from sendora_sms.api.pagination import paginate
from sendora_sms.api.schema import error_responses, list_response
from rest_framework.response import Response


class AuditLogListApi(OrgApi):
    admin_only = True

    @extend_schema(
        operation_id="audit_log_list", tags=["audit"],
        parameters=[OpenApiParameter("action", str), OpenApiParameter("limit", int), OpenApiParameter("cursor", str)],
        responses={200: list_response(AuditEntryOutput), **error_responses(400, 401, 403, 404)},
        description="Audit entries of the org, newest first, of the key's own mode (a test key sees what test keys "
                    "did; a live key everything else). Admin keys only (403 `admin_required`).",
    )
    def get(self, request, org_id):
        qs = audit_entry_list(org=self.org, action=request.query_params.get("action"), mode=self.api_key.mode)
        return Response(paginate(qs, request.query_params, lambda e: AuditEntryOutput(e).data))
