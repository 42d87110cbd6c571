"""Permission classes: each gives exactly one of the contract's outcomes.

Views declare `admin_only = True` for admin-key endpoints and `sms_endpoint = True` for the
SMS endpoints that need a paid plan (see sendora_sms/api/base.py).
"""

from rest_framework.permissions import BasePermission

from sendora_sms import errors
from sendora_sms.api.inputs import parse_uuid
from sendora_sms.errors import AdminRequired, NotAuthenticated, OrgNotFound, PlanUpgradeRequired


class HasApiKey(BasePermission):
    """Missing key → 401 (unknown/revoked keys are refused by the authentication class)."""

    def has_permission(self, request, view):
        if request.auth is None:
            raise NotAuthenticated()
        return True


class OrgMatchesKey(BasePermission):
    """An org id in the path that is not the key's org → 404 org_not_found, never 403."""

    def has_permission(self, request, view):
        raw = view.kwargs.get("org_id")
        org_id = parse_uuid(raw)
        if org_id is None or request.auth.org_id != org_id:
            raise OrgNotFound()
        return True


class SecretKeyRequired(BasePermission):
    def has_permission(self, request, view):
        if request.auth.publishable:
            raise errors.SecretKeyRequired()
        return True



class PlanAllowsSms(BasePermission):
    def has_permission(self, request, view):
        if getattr(view, "sms_endpoint", False) and not request.auth.org.sms_enabled:
            raise PlanUpgradeRequired()
        return True


class AdminRoleRequired(BasePermission):
    def has_permission(self, request, view):
        admin_only = getattr(view, "admin_only", False)
        if callable(admin_only):
            admin_only = admin_only(request)
        if admin_only and not request.auth.is_admin:
            raise AdminRequired()
        return True
