"""Webhook signature schemes of MessageBird and Sinch against their published test vectors.

tests/data/messagebird_webhook_signature_vectors.json is the MessageBird Python SDK's own vector file
(messagebird/python-rest-api, tests/test_request_validator/webhook_signature_test_data.json; copied as
data, as PROVIDERS.md §2.1 suggests): 44 cases, valid and invalid, each with the clock to check at.
The Sinch vector is from PROVIDERS.md §2.4 (the Java SDK's SMS webhook test, recomputed there)."""
import json
from datetime import datetime
from pathlib import Path

import pytest

from sms.providers.messagebird import verify_signature as mb_verify
from sms.providers.sinch import sign as sinch_sign
from sms.providers.sinch import verify_signature as sinch_verify
from tests.fakes.messagebird_server import sign_jwt

VECTORS = json.loads((Path(__file__).resolve().parents[3] / "data" / "messagebird_webhook_signature_vectors.json")
                     .read_text())


def test_the_vector_file_holds_valid_and_invalid_cases():
    assert len(VECTORS) == 44
    assert {case["valid"] for case in VECTORS} == {True, False}


@pytest.mark.parametrize("case", VECTORS, ids=[c["name"] for c in VECTORS])
def test_messagebird_jwt_vectors(case):
    now = datetime.fromisoformat(case["timestamp"]).timestamp()
    body = case.get("payload", "").encode()
    secret = case.get("secret", "")  # the "none alg" case has no secret at all
    assert mb_verify(token=case["token"], signing_key=secret, url=case["url"], body=body, now=now) is case["valid"]


def test_the_vector_from_providers_md_with_our_own_clock_is_expired():
    case = next(c for c in VECTORS if c["name"] == "Valid JWT with URL parameters and payload - POST")
    assert case["token"].endswith("_H--TOuYFLpeEH39-rg5E3IHVkjHozBcaKVWPRC5m9I")  # PROVIDERS.md §2.1
    assert not mb_verify(token=case["token"], signing_key=case["secret"], url=case["url"], body=b"Hello, World!")


def test_a_fresh_token_from_the_fake_verifies_and_any_change_breaks_it():
    key, url, body = "k" * 64, "https://sms.example.com/api/v1/sms/webhooks/messagebird/x/status?a=1&b=2", b"id=1"
    token = sign_jwt(signing_key=key, url=url, body=body)
    assert mb_verify(token=token, signing_key=key, url=url, body=body)
    assert not mb_verify(token=token, signing_key=key, url=url.replace("a=1&b=2", "b=2&a=1"), body=body)
    assert not mb_verify(token=token, signing_key=key, url=url, body=b"id=2")
    assert not mb_verify(token=token, signing_key="x" * 64, url=url, body=body)
    assert not mb_verify(token=token, signing_key=key, url=url, body=b"")
    assert not mb_verify(token="", signing_key=key, url=url, body=body)


SINCH_BODY = (b'{"at":"2025-01-13T09:22:40.914Z","batch_id":"01JHFFHQ0P99JPPNQPJDV7JTBP","client_reference":'
              b'"a client reference","code":0,"operator_status_at":"2025-01-13T09:22:00Z","recipient":"33662162466",'
              b'"status":"Delivered","type":"recipient_delivery_report_sms"}')
SINCH_HEADERS = {"x-sinch-webhook-signature": "ZoHei66PPN/kZjw7hFVfGhJOnml3iGNCMWoyQVcE5o0=",
                 "x-sinch-webhook-signature-nonce": "01JHFFHWYY7HSS4FWTMDTQEK8V",
                 "x-sinch-webhook-signature-timestamp": "1736760161",
                 "x-sinch-webhook-signature-algorithm": "HmacSHA256"}


def test_sinch_hmac_vector():
    assert sinch_sign(secret="SMSWebhooksSecret", body=SINCH_BODY, nonce=SINCH_HEADERS["x-sinch-webhook-signature-nonce"],
                      timestamp="1736760161") == SINCH_HEADERS["x-sinch-webhook-signature"]
    assert sinch_verify(secret="SMSWebhooksSecret", body=SINCH_BODY, headers=SINCH_HEADERS, now=1736760161 + 10)


@pytest.mark.parametrize("change", ["secret", "body", "nonce", "missing", "too_old", "too_new"])
def test_sinch_hmac_refuses_any_change_and_a_timestamp_outside_300_s(change, settings):
    settings.SINCH_WEBHOOK_TOLERANCE_SECONDS = 300
    secret, body, headers, now = "SMSWebhooksSecret", SINCH_BODY, dict(SINCH_HEADERS), 1736760161
    if change == "secret":
        secret = "other"
    elif change == "body":
        body = body.replace(b"Delivered", b"Failed")
    elif change == "nonce":
        headers["x-sinch-webhook-signature-nonce"] = "01JHFFHWYY7HSS4FWTMDTQEK8W"
    elif change == "missing":
        del headers["x-sinch-webhook-signature"]
    elif change == "too_old":
        now += 301
    elif change == "too_new":
        now -= 301
    assert not sinch_verify(secret=secret, body=body, headers=headers, now=now)
    assert sinch_verify(secret="SMSWebhooksSecret", body=SINCH_BODY, headers=SINCH_HEADERS, now=1736760161 + 300)
