"""Issue #14: the dashboard's middleware (sessions, auth, messages, WhiteNoise) steps aside on /api/,
and still runs everywhere else (sendora_sms/api/middleware.py)."""
import pytest

pytestmark = pytest.mark.django_db


def test_an_api_request_runs_no_session_user_or_messages_middleware(org, admin_key, client_for, monkeypatch):
    from django.contrib.auth.middleware import AuthenticationMiddleware
    from django.contrib.messages.middleware import MessageMiddleware
    from django.contrib.sessions.middleware import SessionMiddleware

    ran = []
    monkeypatch.setattr(SessionMiddleware, "process_request", lambda self, r: ran.append("session"))
    monkeypatch.setattr(AuthenticationMiddleware, "process_request", lambda self, r: ran.append("auth"))
    monkeypatch.setattr(MessageMiddleware, "process_request", lambda self, r: ran.append("messages"))
    response = client_for(admin_key).get(f"/api/v1/orgs/{org.id}/sms/sends")
    assert response.status_code == 200 and ran == []
    assert not response.cookies
    assert response["X-Frame-Options"] == "DENY" and response["Cache-Control"] == "no-store"
    assert not hasattr(response.wsgi_request, "session")


def test_the_dashboard_keeps_sessions_and_csrf(client):
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert "csrftoken" in response.cookies
    assert hasattr(response.wsgi_request, "session") and hasattr(response.wsgi_request, "user")


def test_a_dashboard_post_without_a_csrf_token_is_still_refused(client):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert strict.post("/admin/login/", {"username": "x", "password": "y"}).status_code == 403
