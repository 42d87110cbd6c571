"""Issue #10 point 5: every error code the API can return is in the README's error table.

The codes are collected from the source, so a new one that is not documented fails here."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What answers HTTP requests: the API and webhook packages, the typed errors, authentication and
# permissions, and the services whose errors the API renders as they are.
HTTP_PACKAGES = ("sendora_sms/api", "sms/api", "sms/webhooks", "audit/api", "orgs/api", "sms/links")
HTTP_FILES = ("sendora_sms/errors.py", "sendora_sms/health.py", "sms/errors.py", "orgs/errors.py",
              "orgs/authentication.py", "orgs/permissions.py", "sms/services/sends.py")
SOURCES = [p for pkg in HTTP_PACKAGES if (ROOT / pkg).is_dir() for p in (ROOT / pkg).rglob("*.py")] + [
    ROOT / f for f in HTTP_FILES if (ROOT / f).exists()]
PATTERNS = [
    re.compile(r'^\s+code\s*=\s*"([a-z_]+)"', re.M),          # SendoraError subclasses
    re.compile(r'\bcode="([a-z_]+)"'),                         # ValidationFailed(..., code="…")
    re.compile(r'json_error\(\s*\d{3},\s*"([a-z_]+)"'),        # responses built outside DRF
    re.compile(r'^\s+(?:drf\.\w+|\d{3}): \(?"([a-z_]+)"', re.M),  # exception handler / middleware tables
]


def _codes_in_source() -> set[str]:
    found: set[str] = set()
    for path in SOURCES:
        text = path.read_text()
        for pattern in PATTERNS:
            found.update(pattern.findall(text))
    return found


def _codes_in_readme() -> set[str]:
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| status | codes |"):]
    table = table[: table.index("\n\n")]
    return set(re.findall(r"`([a-z_]+)`", table))


def test_the_collector_finds_the_well_known_codes():
    codes = _codes_in_source()
    assert {"invalid_json", "quota_exceeded", "org_not_found", "length_required", "invalid_metadata"} <= codes


def test_every_error_code_is_in_the_readme_table():
    missing = sorted(_codes_in_source() - _codes_in_readme())
    assert not missing, f"error codes missing from README.md's error table: {missing}"
