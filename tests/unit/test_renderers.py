"""sendora_sms/api/renderers.py JsonRenderer writes DRF's JSONRenderer bytes (issue #14: orjson instead of json.dumps),
and sendora_sms/db.py json_dumps the same jsonb values as json.dumps."""
import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest
from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer

from sendora_sms.api.renderers import JsonRenderer
from sendora_sms.db import json_dumps

AT = dt.datetime(2026, 12, 5, 20, 0, 0, 123456, tzinfo=dt.timezone.utc)
SAMPLES = [
    {"id": str(uuid.uuid4()), "to": "+15551234567", "body": "Your code is 482910", "status": "queued",
     "segments": 1, "metadata": {"user": "u_42", "nested": {"list": [1, 2.5, None, True, False]}},
     "price": "0.0079", "created_at": "2026-12-05T20:00:00.123456Z", "error_code": None},
    {"unicode": "héllo 👋 \u00e9\u4e2d", "line_separators": "a\u2028b\u2029c", "quote": "\"\\/\n\t"},
    {"at": AT, "day": AT.date(), "time": dt.time(12, 30), "amount": Decimal("0.0079"), "uid": uuid.UUID(int=7),
     "lazy": gettext_lazy("Not found.")},
    {"at": dt.datetime(2026, 1, 1, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))},
    [1, "two", {"three": [3]}], [], {}, "text", 0, -1, 2.5, 1e16, True, None,
    {"big": 2 ** 70}, {1: "int key"},
]


@pytest.mark.parametrize("data", SAMPLES, ids=range(len(SAMPLES)))
def test_the_same_bytes_as_drf(data):
    assert JsonRenderer().render(data, "application/json") == JSONRenderer().render(data, "application/json")


@pytest.mark.parametrize("accepted", ["application/json; indent=4", "application/json; indent=0"])
def test_indented_output_is_drfs(accepted):
    data = {"a": [1, {"b": "c"}]}
    assert JsonRenderer().render(data, accepted) == JSONRenderer().render(data, accepted)


def test_what_orjson_refuses_fails_as_drf_fails():
    with pytest.raises(UnicodeEncodeError):  # a lone surrogate cannot be UTF-8: DRF's own error
        JsonRenderer().render({"s": "\ud800"}, "application/json")


def test_no_data_is_an_empty_body():
    assert JsonRenderer().render(None) == b""


@pytest.mark.parametrize("value", [
    {"decision": "queued", "duplicate_of": str(uuid.uuid4())}, {"bench": True, "i": 5, "f": 0.1},
    {"unicode": "héllo 👋", "nul_free": "a\u2028b"}, [1, [2, [3]]], {"big": 2 ** 70}, {1: "int key"},
])
def test_json_dumps_stores_the_value_json_dumps_stores(value):
    out = json_dumps(value)
    assert json.loads(out) == json.loads(json.dumps(value))


@pytest.mark.parametrize("value", [{"at": AT}, {"day": AT.date()}, {"amount": Decimal("1.5")}])
def test_json_dumps_refuses_what_json_dumps_refuses(value):
    with pytest.raises(TypeError):
        json.dumps(value)
    with pytest.raises(TypeError):
        json_dumps(value)


@pytest.mark.parametrize("data", [
    {"at": AT, "no_micro": AT.replace(microsecond=0), "day": AT.date(), "amount": Decimal("0.0079"),
     "uid": uuid.UUID(int=7), "lazy": gettext_lazy("Not found."), "f": 1e-7, "n": None, "nested": {"l": [1, "ü"]}},
    {"big": 2 ** 70}, {1: "int key"}, {"text": "a\u2028b 👋"},
])
def test_an_events_data_is_what_json_with_djangos_encoder_gives_back(data):
    """sms/services/events.py json_round_trip: the stored event data, as json.loads(json.dumps(…, DjangoJSONEncoder))."""
    from django.core.serializers.json import DjangoJSONEncoder

    from sms.services.events import json_round_trip

    assert json_round_trip(data) == json.loads(json.dumps(data, cls=DjangoJSONEncoder))
