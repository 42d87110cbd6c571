"""Shape checks for request input — JSON bodies and query filters — shared by every API view.

A body is a JSON object with known field names (or their documented camelCase twins) and the
right JSON types; anything else is 400 `validation_error` with one message per offending field.
Value rules (E.164, lengths, choices) belong to the services.
"""
from __future__ import annotations

import re
import uuid

from sendora_sms.errors import ValidationFailed

_TYPE_NAMES = {str: "a string", dict: "an object", int: "an integer", bool: "a boolean", list: "a list"}


def parse_object(data, *, types: dict[str, tuple[type, ...]], required: tuple[str, ...] = (),
                 twins: dict[str, str] | None = None) -> dict:
    """Check `data` against `types` (field → allowed JSON types; include type(None) for nullable).

    `twins` maps a camelCase spelling to its snake_case field. Returns the fields by snake_case name.
    """
    twins = twins or {}
    if not isinstance(data, dict):
        raise ValidationFailed("The request body must be a JSON object.", details={"fields": {}})
    fields: dict[str, str] = {}
    out: dict = {}
    for raw_name, value in data.items():
        name = twins.get(raw_name, raw_name)
        if name not in types:
            fields[raw_name] = "Unknown field."
        elif name in out:
            fields[raw_name] = f"Given twice (as `{name}` and its camelCase twin)."
        elif not isinstance(value, types[name]) or (isinstance(value, bool) and bool not in types[name]):
            wanted = next(_TYPE_NAMES[t] for t in types[name] if t in _TYPE_NAMES)
            fields[raw_name] = f"Must be {wanted}."
        else:
            out[name] = value
    spelled = {twin: name for twin, name in twins.items()}
    for name in required:
        given_as_twin = any(fields.get(twin) for twin, field in spelled.items() if field == name)
        if name not in out and name not in fields and not given_as_twin:
            aliases = [f"`{t}`" for t, field in spelled.items() if field == name]
            fields[name] = "This field is required" + (f" ({' or '.join(aliases + [f'`{name}`'])})." if aliases else ".")
    if fields:
        raise ValidationFailed("The request body is not valid.", details={"fields": fields})
    return out


def filter_error(name: str, message: str) -> ValidationFailed:
    """400 `invalid_filter` for a bad query-string filter value."""
    return ValidationFailed(f"Filter `{name}`: {message}", code="invalid_filter", details={"filter": name})


_CANONICAL_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def parse_uuid(raw) -> uuid.UUID | None:
    """An id from a URL path, accepted only in its canonical 8-4-4-4-12 hex form. uuid.UUID() alone also
    takes `{…}`, `urn:uuid:…`, no hyphens and (through int()) nothing else — but one resource must have one
    address, so every other spelling is "no such resource". None when not canonical."""
    if not isinstance(raw, str) or not _CANONICAL_UUID.match(raw):
        return None
    return uuid.UUID(raw)
