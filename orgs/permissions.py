"""Permission classes: each gives exactly one of the contract's outcomes.

Views declare `admin_only = True` for admin-key endpoints and `sms_endpoint = True` for the
SMS endpoints that need a paid plan (see sendora_sms/api/base.py).
"""

from rest_framework.permissions import BasePermission

from sendora_sms import errors
from orgs.models import KeyMode
from sendora_sms.api.inputs import parse_uuid
from sendora_sms.errors import AdminRequired, LiveKeyRequired, NotAuthenticated, OrgNotFound, PlanUpgradeRequired


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


class LiveKeyForWrites(BasePermission):
    """Views with `live_only` (a bool, or a callable taking the request) refuse test keys: 403
    live_key_required. The suppression list is one per org, shared by both modes: a test key may read
    it, only a live key may change it (README "Test and live keys")."""

    def has_permission(self, request, view):
        live_only = getattr(view, "live_only", False)
        if callable(live_only):
            live_only = live_only(request)
        if live_only and request.auth.mode != KeyMode.PROD:
            raise LiveKeyRequired()
        return True
