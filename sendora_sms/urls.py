from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from sendora_sms.admin_site import site as admin_site
from sendora_sms.env import env
from sendora_sms.health import health

api_v1 = [
    # The providers' webhooks first: a status callback is the most frequent request (issue #14), and no other route
    # starts with sms/webhooks/, so the order changes no match, only how many patterns a callback is tried against.
    path("sms/webhooks/", include("sms.webhooks.urls")),
    path("", include("sms.api.urls")),
    path("", include("audit.api.urls")),
    path("", include("sms.tenant_webhooks.api")),
    path("", include("sms.links.api")),
]
# Benchmark baseline endpoint (bench/send_api.py); only when SENDORA_BENCH_ENDPOINTS=1, never in production.
if env.bool("SENDORA_BENCH_ENDPOINTS", default=False):
    api_v1.append(path("bench/", include("bench.baseline_urls")))

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("health", health, name="health"),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("admin", RedirectView.as_view(url="/admin/")),
    path("admin/", admin_site.urls),
    path("", RedirectView.as_view(url="/api/docs")),
]
