"""Sign a request to a MessageBird or Sinch webhook of a security-suite tenant, as the provider would
(MessageBird-Signature-JWT over the URL as called and the body; Sinch's nonce HMAC). Returns Django
test-client META headers."""
from tests.fakes.messagebird_server import sign_jwt
from tests.fakes.sinch_server import signed_headers


def provider_of(template: str) -> str:
    for name in ("twilio", "messagebird", "sinch"):
        if f"/webhooks/{name}/" in template:
            return name
    raise ValueError(template)


def sign(provider: str, *, url: str, body: bytes, tenant) -> dict:
    if provider == "messagebird":
        return {"HTTP_MESSAGEBIRD_SIGNATURE_JWT": sign_jwt(signing_key=tenant.provider_secrets["signing_key"],
                                                           url=url, body=body)}
    headers = signed_headers(secret=tenant.provider_secrets["callback_secret"], body=body)
    return {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items() if k != "Content-Type"}
