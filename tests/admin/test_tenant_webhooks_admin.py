"""Issue #15 dashboard: endpoints with why they were disabled, the delivery log, test event and resend; another
org's endpoints are not shown; secrets are never rendered."""
import pytest

from sms import crypto
from sms.tenant_webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookMessage

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint(org_a):
    ep = WebhookEndpoint.objects.create(org=org_a, mode="prod", url="https://hooks.a.example/in", events=["*"],
                                        enabled=False, disabled_reason="The endpoint answered 410 Gone.",
                                        secret_ciphertext=crypto.encrypt("whsec_c2VjcmV0LXNlY3JldA==", org_id=org_a.pk))
    message = WebhookMessage.objects.create(endpoint=ep, event=None, event_id_public=ep.pk, event_type="webhook.test",
                                            payload={})
    WebhookAttempt.objects.create(message=message, endpoint=ep, attempt=1, status_code=410, latency_ms=12,
                                  response_body="gone-body")
    return ep


def test_endpoint_page_shows_why_it_was_disabled_and_its_deliveries(login, admin_a, endpoint):
    client = login(admin_a)
    listing = client.get("/admin/sms/webhookendpoint/").content.decode()
    assert "hooks.a.example" in listing and "410 Gone" in listing
    page = client.get(f"/admin/sms/webhookendpoint/{endpoint.pk}/change/").content.decode()
    assert 'id="webhook-deliveries"' in page and "gone-body" in page and "410" in page
    assert "whsec_" not in page and "c2VjcmV0" not in page and endpoint.secret_ciphertext not in page


def test_test_event_and_resend_actions(login, admin_a, endpoint, monkeypatch):
    from sms.tenant_webhooks import services

    queued = []
    monkeypatch.setattr(services, "enqueue_delivery", lambda **kw: queued.append(kw["message_id"]))
    client = login(admin_a)
    client.post("/admin/sms/webhookendpoint/", {"action": "send_test_event", "_selected_action": [endpoint.pk]})
    assert WebhookMessage.objects.filter(endpoint=endpoint, event_type="webhook.test").count() == 2
    attempt = WebhookAttempt.objects.get()
    client.post("/admin/sms/webhookattempt/", {"action": "resend", "_selected_action": [attempt.pk]})
    assert str(attempt.message_id) in queued
    client.post("/admin/sms/webhookendpoint/", {"action": "re_enable", "_selected_action": [endpoint.pk]})
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.disabled_reason == ""


def test_another_orgs_endpoint_is_404(login, admin_b, endpoint):
    client = login(admin_b)
    assert client.get(f"/admin/sms/webhookendpoint/{endpoint.pk}/change/").status_code == 404
    assert "hooks.a.example" not in client.get("/admin/sms/webhookendpoint/").content.decode()
