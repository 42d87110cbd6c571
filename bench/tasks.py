"""The Celery baseline task of the benchmarks that run a worker (bench/dispatch.py, bench/lifecycle.py);
their worker imports this module with `--include bench.tasks`."""
from __future__ import annotations

from celery import shared_task


@shared_task(name="bench.tasks.http_only_task", ignore_result=True)
def http_only_task(to: str, body: str, *, account_sid: str, auth_token: str, from_number: str, counter: str) -> None:
    """Only the provider HTTP request the dispatch task makes, through the same pooled client, then INCR
    the benchmark's Redis `counter` (on the broker) so it can count the tasks done."""
    import redis
    from django.conf import settings
    from twilio.rest import Client

    from sms.providers.twilio import shared_http_client

    client = Client(account_sid, auth_token, environment={"_": ""}, http_client=shared_http_client())
    client.api.base_url = settings.TWILIO_API_BASE_URL
    client.messages.create(to=to, from_=from_number, body=body)
    redis.Redis.from_url(settings.CELERY_BROKER_URL).incr(counter)
