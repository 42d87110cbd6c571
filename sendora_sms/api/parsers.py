"""Request parsers. A body that parses as JSON is JSON, whatever Content-Type the client sent
(`curl -d '{…}'` sends application/x-www-form-urlencoded).

JSON is read strictly (`strict_json_loads`): a body the database or a client library could not round-trip
is refused at the door with 400 `invalid_json` rather than failing later as a 500 or being stored as
something the client did not send. Refused:
- invalid UTF-8, and lone surrogates (`"\\ud800"`) in any string or key — they cannot be encoded as UTF-8;
- U+0000 (PostgreSQL text and jsonb cannot hold it);
- `NaN`, `Infinity`, `-Infinity` and numbers that overflow a double (`1e400`): not JSON (RFC 8259 §6);
- duplicate keys in one object (RFC 8259 §4: which one wins is undefined across parsers);
- nesting deeper than MAX_DEPTH arrays/objects.
The same rules serve the cursor decoder (sendora_sms/api/pagination.py).
"""
import json
import math
from io import BytesIO

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, FormParser, JSONParser

MAX_DEPTH = 32


class HostileJson(ValueError):
    """JSON that parses in Python but that we refuse; str(exc) says why."""


def _constant(name: str):
    raise HostileJson(f"`{name}` is not a JSON number.")


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise HostileJson(f"The number {text[:40]} is out of range.")
    return value


def _object(pairs: list) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise HostileJson(f"The key {key!r} appears twice in one object.")
        out[key] = value
    return out


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise HostileJson("The request body contains a NUL character (U+0000).")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise HostileJson("The request body contains a lone surrogate (an unpaired \\ud800–\\udfff escape).") from None


def check_value(value, depth: int = 0) -> None:
    """Walk a decoded JSON value: strings and keys UTF-8-encodable and NUL-free, depth bounded."""
    if isinstance(value, str):
        _check_text(value)
    elif isinstance(value, (dict, list)):
        if depth >= MAX_DEPTH:
            raise HostileJson(f"The JSON is nested deeper than {MAX_DEPTH} levels.")
        items = value.items() if isinstance(value, dict) else ((None, item) for item in value)
        for key, item in items:
            if key is not None:
                _check_text(key)
            check_value(item, depth + 1)


def strict_json_loads(raw: bytes | str):
    """Decode JSON by the rules in the module docstring; raises HostileJson / ValueError."""
    text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw  # UnicodeDecodeError is a ValueError
    try:
        value = json.loads(text, object_pairs_hook=_object, parse_constant=_constant, parse_float=_number)
    except RecursionError:
        raise HostileJson(f"The JSON is nested deeper than {MAX_DEPTH} levels.") from None
    check_value(value)
    return value


def _parse_error(exc: ValueError) -> ParseError:
    if isinstance(exc, HostileJson):
        return ParseError(str(exc))
    if isinstance(exc, UnicodeDecodeError):
        return ParseError("The request body is not valid UTF-8.")
    return ParseError("The request body is not valid JSON.")


def _reject_nul(value):
    """Form fields: U+0000 cannot be stored; refuse it (JSON bodies go through check_value)."""
    for key, item in value.items():
        if "\x00" in key or "\x00" in item:
            raise ParseError("The request body contains a NUL character (U+0000).")
    return value


class JsonParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        if not raw.strip():
            return {}
        try:
            return strict_json_loads(raw)
        except ValueError as exc:
            raise _parse_error(exc) from exc


class FormEncodedJsonParser(BaseParser):
    """application/x-www-form-urlencoded: JSON when the body is JSON, else ordinary form fields.
    Either way the body must be UTF-8: bytes that are not are refused (400), never turned into U+FFFD."""

    media_type = "application/x-www-form-urlencoded"

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        try:
            text = raw.decode("utf-8").strip()
            if text.startswith(("{", "[")):
                return strict_json_loads(text)
            from urllib.parse import unquote_to_bytes

            # Percent-escapes must decode to UTF-8 too ("%FF" would otherwise become U+FFFD in a field).
            for part in text.replace("+", " ").split("&"):
                for piece in part.split("=", 1):
                    unquote_to_bytes(piece).decode("utf-8")
        except ValueError as exc:
            raise _parse_error(exc) from exc
        return _reject_nul(FormParser().parse(BytesIO(raw), media_type, parser_context).dict())
