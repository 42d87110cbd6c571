"""Request parsers. A body that parses as JSON is JSON, whatever Content-Type the client sent
(`curl -d '{…}'` sends application/x-www-form-urlencoded)."""
import json

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, FormParser, JSONParser


def _reject_nul(value):
    """PostgreSQL text and jsonb cannot hold U+0000: refuse it at the door (400) rather than fail
    at INSERT time (500). Found by the schemathesis run in tests/security."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ParseError("The request body contains a NUL character (U+0000).")
    elif isinstance(value, dict):
        for key, item in value.items():
            _reject_nul(key)
            _reject_nul(item)
    elif isinstance(value, list):
        for item in value:
            _reject_nul(item)
    return value


class JsonParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
            raise ParseError("The request body is not valid JSON.") from exc
        return _reject_nul(data)


class FormEncodedJsonParser(BaseParser):
    """application/x-www-form-urlencoded: JSON when the body is JSON, else ordinary form fields."""

    media_type = "application/x-www-form-urlencoded"

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        text = raw.decode("utf-8", errors="replace").strip()
        if text.startswith(("{", "[")):
            try:
                return _reject_nul(json.loads(text))
            except (ValueError, RecursionError) as exc:
                raise ParseError("The request body looks like JSON but does not parse.") from exc
        from io import BytesIO

        return _reject_nul(FormParser().parse(BytesIO(raw), media_type, parser_context).dict())
