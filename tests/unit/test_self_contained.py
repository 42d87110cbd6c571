"""The repository stands alone: no file in it reads or cites a path outside it, or a document that is
not in it. Checked over every file git tracks (code, tests, docs, CI, templates)."""
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Built from pieces so this file does not match itself.
FORBIDDEN = re.compile("|".join([
    re.escape("/" + "work/"), re.escape(".." + "/shared"), re.escape("/" + "shared/"),
    r"\b(?:TWILIO|API|DESIGN|CONVENTIONS)\." + "md",
]))


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / name for name in out.decode().split("\0") if name]


def test_no_file_cites_a_path_or_document_outside_the_repository():
    files = tracked_files()
    assert len(files) > 50
    hits = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if FORBIDDEN.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:120]}")
    assert not hits, "\n".join(hits)


def _top_level_imports(path: Path) -> set[str]:
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_every_third_party_package_imported_is_declared_in_requirements():
    """Not left to arrive through another package (PyYAML came with schemathesis, urllib3 with requests)."""
    import sys
    from importlib.metadata import packages_distributions

    def canon(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    declared = {canon(re.split(r"[\[=<>~!; ]", line.strip())[0])
                for line in (ROOT / "requirements.txt").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")}
    ours = {p.name for p in ROOT.iterdir() if p.is_dir()} | {"tests", "bench", "_pytest", "the"}
    imported = set()
    for path in tracked_files():
        if path.suffix == ".py" and path.parts[len(ROOT.parts)] in ("tests", "sms", "orgs", "audit", "sendora_sms",
                                                                    "bench", "manage.py"):
            imported |= _top_level_imports(path)
    distributions = packages_distributions()
    missing = {}
    for module in sorted(imported - ours - set(sys.stdlib_module_names)):
        dists = {canon(d) for d in distributions.get(module, [module])}
        if not dists & declared:
            missing[module] = sorted(dists)
    assert not missing, f"imported but not in requirements.txt: {missing}"
