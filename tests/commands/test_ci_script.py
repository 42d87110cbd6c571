""".ci/run: CI fails — never warns and carries on — when Chromium cannot be installed, so the browser
tests cannot be skipped silently; and the suite itself fails (not skips) them when told a browser is required.

The script runs from a copy in a temporary directory (its `cd "$(dirname "$0")/.."` lands there), with a
PATH holding only a stub `apt-get`, so nothing on this machine is installed, removed or created."""
import shutil
import subprocess
from pathlib import Path

import pytest
from _pytest.outcomes import Failed, Skipped

from tests.browser.conftest import skip_or_fail_without_browser

ROOT = Path(__file__).resolve().parents[2]
BASH = shutil.which("bash") or "/bin/bash"


def run_ci_copy(tmp_path, apt_get_exit: int):
    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dirname").symlink_to(shutil.which("dirname"))
    apt_get = bin_dir / "apt-get"
    apt_get.write_text(f"#!{BASH}\nexit {apt_get_exit}\n")
    apt_get.chmod(0o755)
    # No chromium, no python, no make on this PATH: the script must stop at the Chromium step.
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    return subprocess.run([BASH, str(tmp_path / ".ci" / "run")], env=env, capture_output=True, text=True,
                          timeout=30, cwd=tmp_path)


def test_ci_fails_when_chromium_cannot_be_installed(tmp_path):
    result = run_ci_copy(tmp_path, apt_get_exit=100)
    assert result.returncode != 0
    assert "could not install chromium" in result.stderr
    assert "== python environment" not in result.stdout  # stopped there, did not go on to run the suite


def test_ci_fails_when_the_install_reports_success_but_no_chromium_is_on_path(tmp_path):
    result = run_ci_copy(tmp_path, apt_get_exit=0)
    assert result.returncode != 0
    assert "chromium is not on PATH" in result.stderr
    assert "== python environment" not in result.stdout


def test_ci_requires_the_browser_tests():
    assert "export SENDORA_REQUIRE_BROWSER=1" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("required, outcome", [("1", Failed), ("", Skipped)])
def test_browser_tests_fail_when_required_and_chromium_is_missing(tmp_path, monkeypatch, required, outcome):
    """What the browser fixture does with no Chromium (none at CHROMIUM_PATH, none on PATH)."""
    monkeypatch.setenv("CHROMIUM_PATH", str(tmp_path / "no-chromium"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("SENDORA_REQUIRE_BROWSER", required)
    with pytest.raises(outcome) as excinfo:
        skip_or_fail_without_browser()
    assert "Chromium not found" in str(excinfo.value)
