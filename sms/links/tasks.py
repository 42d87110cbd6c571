"""Celery: move queued link clicks into the database (beat runs it every SMS_LINK_CLICKS_DRAIN_INTERVAL s)."""
from celery import shared_task


@shared_task(name="sms.links.tasks.link_clicks_drain_task", ignore_result=True)
def link_clicks_drain_task() -> int:
    from sms.links.services import clicks_drain

    return clicks_drain()
