"""Tenant webhooks: Sendora → the tenant's HTTPS endpoints (Standard Webhooks), fed from the events outbox.

Not to be confused with `sms/webhooks/` (providers → Sendora). Layout:
  models.py     WebhookEndpoint (encrypted secret), WebhookMessage (one per event × endpoint: the `webhook-id`),
                WebhookAttempt (one per HTTP try: the delivery log)
  addresses.py  SSRF rules: which URLs may be called (at creation and again at every delivery)
  services.py   the rules: endpoint CRUD, secret rotation, fan-out, delivery, retries, disabling, resend, sweep
  api.py        the ModelViewSet + router under /api/v1/orgs/{org}/webhooks
  tasks.py      Celery: deliver one message, sweep + prune
  admin.py      the dashboard pages
"""
