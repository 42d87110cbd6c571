"""Schemathesis over /api/schema, in-process against the WSGI app. Shared by the bounded CI test
(tests/security/test_fuzz_schemathesis.py) and the long run (bench/fuzz_long.py).

Every operation in the schema is fuzzed with a valid admin sk_test_ key and the org's own id, in
positive (schema-valid) and negative (schema-violating) generation modes. For each path parameter
other than org_id that names a real object (send_id, phone, …) a second pass pins it to a real id of
the org, so the object paths are exercised past the 404. Checks on every response:
not_a_server_error, response_schema_conformance, status_code_conformance.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from collections import Counter
from dataclasses import dataclass, field

import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
# Random strings are almost never dialable numbers, so positive cases would stop at 400
# invalid_phone_number. Half of the positive cases get a real number in their phone fields so the
# send path runs to the end (sandbox magic numbers, a plain US number, a UK number, a national form).
PHONE_FIELDS = ("to", "phone", "phone_number", "phoneNumber")
REAL_PHONES = ("+15005550006", "+15005550001", "+15005550009", "+14155550123", "+447700900123", "(415) 555-0142")


def _with_real_phone(pair):
    case, phone = pair
    if phone is not None and isinstance(case.body, dict):
        for name in PHONE_FIELDS:
            if name in case.body:
                case.body[name] = phone
    return case


@dataclass
class FuzzReport:
    operations: list[str] = field(default_factory=list)
    requests: int = 0
    by_operation: Counter = field(default_factory=Counter)
    by_status: Counter = field(default_factory=Counter)
    error_codes: Counter = field(default_factory=Counter)
    server_errors: int = 0
    failures: list[str] = field(default_factory=list)
    no_negative_space: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict:
        return {
            "operations": len(self.operations),
            "requests": self.requests,
            "server_errors": self.server_errors,
            "check_failures": len(self.failures),
            "unsatisfiable_passes": self.no_negative_space,
            "by_status": dict(sorted((str(k), v) for k, v in self.by_status.items())),
            "by_operation": dict(sorted(self.by_operation.items())),
            "error_codes": dict(sorted(self.error_codes.items())),
            "seconds": round(self.seconds, 1),
        }


@contextmanager
def in_process_app():
    """A WSGI app for in-process calls inside a test transaction.

    Django's WSGIHandler closes "old" DB connections on request start/finish; inside a test that
    would close the connection holding the test transaction. Django's own test client disconnects
    those handlers for the same reason; we do it for the duration of the fuzz run.
    """
    from django.core import signals
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def load_schema(app):
    """The OpenAPI document exactly as clients get it: GET /api/schema on the app."""
    return schemathesis.openapi.from_wsgi("/api/schema", app)


def api_operations(schema) -> list:
    """Every operation of the schema except the signed Twilio webhooks (fuzzed separately)."""
    ops = []
    for result in schema.get_all_operations():
        op = result.ok()  # an operation the schema cannot describe is itself a failure
        if "/sms/webhooks/" not in op.path:  # the provider webhooks; tenant webhook endpoints are fuzzed here
            ops.append(op)
    return ops


def fuzz(*, app, org_id: str, api_key: str, real_path_values: dict[str, list[str]], max_examples: int,
         shrink: bool = False, report: FuzzReport | None = None) -> FuzzReport:
    report = report or FuzzReport()
    started = time.monotonic()
    schema = load_schema(app)
    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if shrink else [])
    for op in api_operations(schema):
        label = f"{op.method.upper()} {op.path}"
        report.operations.append(label)
        path_params = [p.name for p in op.path_parameters]
        pinned_variants: list[dict] = [{}]
        for name in path_params:
            if name != "org_id" and real_path_values.get(name):
                pinned_variants.append({name: real_path_values[name][0]})
        for mode in MODES:
            for pinned in pinned_variants:
                strategy = op.as_strategy(
                    generation_mode=mode,
                    path_parameters={"org_id": org_id, **pinned},
                    headers={"x-api-key": api_key},
                )
                if mode == GenerationMode.POSITIVE:
                    strategy = st.tuples(strategy, st.sampled_from((None,) + REAL_PHONES)).map(_with_real_phone)

                @hsettings(max_examples=max_examples, deadline=None, database=None, phases=phases,
                           suppress_health_check=list(HealthCheck), derandomize=False, print_blob=False)
                @given(case=strategy)
                def run(case):
                    response = case.call(app=app)
                    report.requests += 1
                    report.by_operation[label] += 1
                    report.by_status[response.status_code] += 1
                    if response.status_code >= 400:
                        try:
                            code = response.json()["error"]["code"]
                        except Exception:  # noqa: BLE001 — the schema check reports a malformed error body
                            code = "?"
                        report.error_codes[f"{label} [{case.meta.generation.mode.value if case.meta else '?'}] "
                                           f"{response.status_code} {code}"] += 1
                    if response.status_code >= 500:
                        report.server_errors += 1
                    case.validate_response(response, checks=CHECKS)

                try:
                    run()
                except Unsatisfiable:
                    # e.g. negative mode on an operation whose only free input is an unconstrained string:
                    # there is no schema-violating value to generate.
                    report.no_negative_space.append(f"{label} [{mode.value}{' pinned' if pinned else ''}]")
                except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 — collect all, then report
                    report.failures.append(f"{label} [{mode.value}{' pinned ' + str(pinned) if pinned else ''}]: "
                                           f"{type(exc).__name__}: {str(exc)[:3000]}")
    report.seconds += time.monotonic() - started
    return report
