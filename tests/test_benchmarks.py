"""The benchmark harness (no benchmark runs here): the entry point, the record format, the
legacy import, and the generated tables being up to date with the records (seconds)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
FIELDS = {"suite", "case", "commit", "date", "host", "settings", "metrics"}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture()
def harness(monkeypatch, tmp_path):
    """benchmarks.harness with its results folder in tmp_path."""
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks import harness

    monkeypatch.setattr(harness, "RESULTS", tmp_path)
    return harness


def test_docs_tables_are_generated_from_the_records():
    done = run("tables", "--check")
    assert done.returncode == 0, (
        "docs/benchmarks.md or README.md differ from the benchmark records; run "
        f"`python -m benchmarks tables`:\n{done.stdout[-3000:]}{done.stderr[-1000:]}")


def test_entry_point_lists_every_suite_with_a_description():
    done = run()
    assert done.returncode == 0, done.stderr
    lines = [line.split() for line in done.stdout.splitlines() if line.startswith("  ")]
    suites = {words[0] for words in lines}
    assert {"recipe_pets", "ship_models", "speed", "tables", "import-legacy"} <= suites
    assert all(len(words) > 1 for words in lines), "a suite without a description"
    assert run("no_such_suite").returncode == 2


def test_every_module_is_a_suite_or_a_helper():
    sys.path.insert(0, str(REPO))
    try:
        from benchmarks.__main__ import SUITES
    finally:
        sys.path.remove(str(REPO))
    helpers = {"__init__", "__main__", "browser", "harness", "recipe_common", "speed_common"}
    modules = {p.stem for p in (REPO / "benchmarks").glob("*.py")} - helpers
    assert modules == set(SUITES.values())
    assert not list((REPO / "benchmarks").glob("*.sh")), "scripts outside the entry point"


@pytest.mark.parametrize("path", sorted(RESULTS.glob("*.jsonl")), ids=lambda p: p.name)
def test_committed_records_have_the_format(path):
    for number, line in enumerate(path.read_text().splitlines(), 1):
        entry = json.loads(line)
        where = f"{path.name}:{number}"
        assert FIELDS <= set(entry), f"{where} lacks {FIELDS - set(entry)}"
        assert entry["suite"] == path.stem, where
        assert entry["commit"] or entry.get("legacy"), f"{where}: no commit and not legacy"
        assert not re.search(r"(?<![\w.])/(work|tmp|root|home)/", line), (
            f"{where} holds an absolute machine path; write it relative to the repository root")


def test_record_appends_one_line_with_host_and_commit(harness):
    harness.record("demo", "a", {"size": 32}, {"seconds": 1.0})
    entry = harness.record("demo", "a", {"size": 32}, {"seconds": 2.0})
    lines = (harness.RESULTS / "demo.jsonl").read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1]) == entry
    assert FIELDS <= set(entry)
    host = entry["host"]
    assert host["cores"] >= 1 and "python" in host["versions"] and isinstance(host["flags"], list)
    assert entry["commit"] is None or re.fullmatch(r"[0-9a-f]{4,40}(-dirty)?", entry["commit"])
    assert harness.latest("demo")["a"]["metrics"] == {"seconds": 2.0}
    with harness.measure() as took:
        sum(range(100))
    assert took["seconds"] >= 0 and took["peak_rss_mib"] > 0


def test_import_legacy_is_idempotent(tmp_path):
    legacy = tmp_path / "recipe_isbi.json"
    legacy.write_text(json.dumps({
        "plain": {"run": "saved_models/recipes/isbi_plain", "epochs": 3, "train_seconds": 9.5,
                  "test": {"pixel_accuracy": 0.9}},
        "machine": "2-core CPU (x86_64), no GPU", "written": "2026-12-03 18:10 UTC"}))
    out = tmp_path / "records"
    out.mkdir()
    (out / "recipe_isbi.jsonl").write_text(json.dumps(
        {"suite": "recipe_isbi", "case": "plain", "commit": "abc1234", "date": "x", "host": {},
         "settings": {}, "metrics": {}}) + "\n")
    for _ in range(2):
        done = run("import-legacy", "--results", str(out), str(legacy))
        assert done.returncode == 0, done.stderr
    entries = [json.loads(line) for line in (out / "recipe_isbi.jsonl").read_text().splitlines()]
    assert [e.get("legacy") for e in entries] == ["recipe_isbi.json", None]  # imported first
    imported = entries[0]
    assert imported["commit"] is None and imported["date"] == "2026-12-03T18:10:00Z"
    assert imported["settings"]["epochs"] == 3 and imported["metrics"]["train_seconds"] == 9.5
    assert imported["host"]["description"] == "2-core CPU (x86_64), no GPU"


def test_cases_run_at_an_older_commit_are_appended_as_runs(tmp_path):
    legacy = tmp_path / "recipe_isbi.json"
    legacy.write_text(json.dumps({
        "old": {"epochs": 1, "train_seconds": 1.0}, "plain": {"epochs": 3, "train_seconds": 9.5},
        "machine": "2-core CPU (x86_64), no GPU", "written": "2026-12-03 18:10 UTC"}))
    out = tmp_path / "records"
    done = run("import-legacy", "--results", str(out), "--cases", "plain", "--commit",
               "b75dfaf", str(legacy))
    assert done.returncode == 0, done.stderr
    (entry,) = [json.loads(line) for line in (out / "recipe_isbi.jsonl").read_text().splitlines()]
    assert entry["case"] == "plain" and entry["commit"] == "b75dfaf" and "legacy" not in entry
    assert entry["metrics"]["train_seconds"] == 9.5
    for bad in (["--cases", "plain"], ["--cases", "nope", "--commit", "b75dfaf"]):
        assert run("import-legacy", "--results", str(out), *bad, str(legacy)).returncode != 0


def test_tables_check_fails_on_a_stale_table_and_the_rewrite_fixes_it(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Page\n\n<!-- tables:isbi -->\n| typed | by hand |\n<!-- /tables:isbi -->\n")
    stale = run("tables", "--check", str(page))
    assert stale.returncode == 1 and "typed" in stale.stdout
    assert run("tables", str(page)).returncode == 0
    assert "pixel error" in page.read_text() and "typed" not in page.read_text()
    assert run("tables", "--check", str(page)).returncode == 0
    page.write_text("<!-- tables:nonsense -->\n<!-- /tables:nonsense -->\n")
    unknown = run("tables", "--check", str(page))
    assert unknown.returncode != 0 and "unknown table" in unknown.stderr
