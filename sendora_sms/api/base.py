"""Base views for org-scoped API endpoints: auth, org match, secret key, plan, admin — in that order."""
from rest_framework.views import APIView

from orgs.authentication import ApiKeyAuthentication
from orgs.permissions import (
    AdminRoleRequired,
    HasApiKey,
    LiveKeyForWrites,
    OrgMatchesKey,
    PlanAllowsSms,
    SecretKeyRequired,
)


class OrgApi(APIView):
    """/api/v1/orgs/{org_id}/…: any secret key of that org. Set `admin_only = True` for admin keys,
    `live_only = True` for endpoints a test key may not call (403 live_key_required)."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasApiKey, OrgMatchesKey, SecretKeyRequired, PlanAllowsSms, AdminRoleRequired,
                          LiveKeyForWrites]
    admin_only = False
    live_only = False
    sms_endpoint = False

    @property
    def org(self):
        return self.request.auth.org

    @property
    def api_key(self):
        return self.request.auth


class SmsApi(OrgApi):
    """SMS endpoints: also need a paid plan (free → 403 plan_upgrade_required)."""

    sms_endpoint = True
