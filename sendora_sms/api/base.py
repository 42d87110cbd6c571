"""Base views for org-scoped API endpoints: auth, org match, secret key, plan, admin — in that order."""
from rest_framework.negotiation import DefaultContentNegotiation
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


_JSON = "application/json"
_ACCEPTS_JSON = frozenset({"*/*", _JSON, f"{_JSON}, */*", "application/*"})


class JsonNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, answered at once for the requests nearly every client sends (issue #14): no `?format=`,
    JSON the one renderer, and an Accept header that is absent or one of the usual JSON-or-anything values — what
    DefaultContentNegotiation would answer for them after parsing the header. Anything else goes to it (406 and
    all)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        meta = request._request.META
        if (format_suffix is None and len(renderers) == 1 and renderers[0].media_type == _JSON
                and not meta.get("QUERY_STRING") and meta.get("HTTP_ACCEPT", "*/*") in _ACCEPTS_JSON):
            return renderers[0], _JSON
        return super().select_renderer(request, renderers, format_suffix)


_policies: dict[tuple, list] = {}  # policy classes → their objects


def _policy_objects(view_class, attribute: str) -> list:
    """The view class's authenticators, permissions, parsers or renderers, built once: they hold no per-request
    state, and DRF builds every one of them anew per request (issue #14)."""
    classes = tuple(getattr(view_class, attribute))
    objects = _policies.get(classes)
    if objects is None:
        objects = _policies[classes] = [policy() for policy in classes]
    return objects


class OrgApi(APIView):
    """/api/v1/orgs/{org_id}/…: any secret key of that org. Set `admin_only = True` for admin keys,
    `live_only = True` for endpoints a test key may not call (403 live_key_required)."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasApiKey, OrgMatchesKey, SecretKeyRequired, PlanAllowsSms, AdminRoleRequired,
                          LiveKeyForWrites]
    content_negotiation_class = JsonNegotiation
    admin_only = False
    live_only = False
    sms_endpoint = False

    def get_authenticators(self):
        return _policy_objects(type(self), "authentication_classes")

    def get_permissions(self):
        return _policy_objects(type(self), "permission_classes")

    def get_parsers(self):
        return _policy_objects(type(self), "parser_classes")

    def get_renderers(self):
        return _policy_objects(type(self), "renderer_classes")

    @property
    def org(self):
        return self.request.auth.org

    @property
    def api_key(self):
        return self.request.auth


class SmsApi(OrgApi):
    """SMS endpoints: also need a paid plan (free → 403 plan_upgrade_required)."""

    sms_endpoint = True
