"""Request parsers. A body that parses as JSON is JSON, whatever Content-Type the client sent
(`curl -d '{…}'` sends application/x-www-form-urlencoded)."""
import json

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, FormParser, JSONParser


class JsonParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        if not raw.strip():
            return {}
        try:
            return json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError("The request body is not valid JSON.") from exc


class FormEncodedJsonParser(BaseParser):
    """application/x-www-form-urlencoded: JSON when the body is JSON, else ordinary form fields."""

    media_type = "application/x-www-form-urlencoded"

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        text = raw.decode("utf-8", errors="replace").strip()
        if text.startswith(("{", "[")):
            try:
                return json.loads(text)
            except ValueError as exc:
                raise ParseError("The request body looks like JSON but does not parse.") from exc
        from io import BytesIO

        return FormParser().parse(BytesIO(raw), media_type, parser_context).dict()
