"""ApiKeyAuthentication: `x-api-key: <key>` or `Authorization: Bearer <key>` → request.auth = ApiKey."""
import re

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication

from orgs.rate_limits import bad_key_blocked, bad_key_record
from orgs.selectors import api_key_get_by_raw_cached
from orgs.services import api_key_touch
from sendora_sms.client_ip import client_ip
from sendora_sms.errors import NotAuthenticated, RateLimited

_KEY_SHAPE = re.compile(r"^(sk|pk)_(prod|test)_[A-Za-z0-9]{8,64}$")


def _raw_key(request) -> str | None:
    raw = request.META.get("HTTP_X_API_KEY")
    if raw is None:
        auth = request.META.get("HTTP_AUTHORIZATION", "")
        if auth[:7].lower() == "bearer ":
            raw = auth[7:]
    return raw.strip() if raw is not None else None


def client_address(request) -> str:
    return client_ip(request) or "unknown"


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        raw = _raw_key(request)
        if raw is None:
            return None  # HasApiKey answers 401
        # The key is looked up first: the bad-key throttle counts and refuses only unknown keys, so
        # junk from an address shared by many clients (a load balancer, a NAT) never locks out a valid key.
        key = api_key_get_by_raw_cached(raw) if _KEY_SHAPE.match(raw) else None
        if key is None:
            client = client_address(request)
            if bad_key_blocked(client=client):
                raise RateLimited("Too many requests with invalid API keys from this address.", retry_after=60)
            bad_key_record(client=client)
            raise NotAuthenticated("The API key is unknown or revoked.")
        api_key_touch(api_key=key)
        return (None, key)

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "orgs.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "x-api-key",
                "description": "Secret key sk_prod_… / sk_test_…; `Authorization: Bearer <key>` also works."}
