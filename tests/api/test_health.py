"""GET /health: 200 when the database and the broker answer, else 503 (the API contract (README.md, /api/schema) "Endpoints")."""
import socket

import pytest

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    """A local port with nothing listening (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_health_is_200_when_database_and_broker_answer(client, settings):
    assert settings.CELERY_BROKER_URL, "the test environment runs with a Redis broker"
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}, "details": {"providers": {}}}
    assert response["x-request-id"]


def test_health_is_503_when_the_broker_port_is_closed(client, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"
    response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok" and body["checks"]["broker"].startswith("error")


def test_health_is_503_for_a_non_redis_broker_that_does_not_answer(client, settings):
    settings.CELERY_BROKER_URL = f"amqp://guest@127.0.0.1:{closed_port()}//"
    assert client.get("/health").status_code == 503


def test_health_without_a_broker_reports_in_process_tasks(client, settings):
    settings.CELERY_BROKER_URL = None
    response = client.get("/health")
    assert response.status_code == 200 and response.json()["checks"]["broker"] == "in-process"


def test_health_needs_no_api_key_and_leaks_no_configuration(client, settings):
    settings.CELERY_BROKER_URL = "redis://:hunter2@127.0.0.1:%d/0" % closed_port()
    response = client.get("/health")
    assert b"hunter2" not in response.content and b"127.0.0.1" not in response.content
