"""Import legacy results files (``benchmarks/results/*.json``) as records.

Before the harness every suite wrote its own JSON file: a dict of variants (the recipes,
``shipped_models.json``, ``finetune.json``) or one report (speed, export, GPU, ...). Each
becomes records in ``benchmarks/results/SUITE.jsonl``: one per variant, or one per report
(per section for ``speed``). What host, date and command information the file holds is
kept; its commit was never recorded, so ``commit`` is null and ``legacy`` names the file.
Importing a file again replaces the records imported from it before (same ``legacy`` name),
so a file re-written by an older checkout can be imported once more.

``--attribute-commits`` then gives each legacy record without a commit the commit that wrote
its result: the oldest commit from which the legacy file, read from git history, held the
record's numbers unchanged up to its last version. ``commit_source`` says so in the record
(the commit was attributed after the fact, not detected when it ran).

Usage (from the repository root)::

    python -m benchmarks import-legacy benchmarks/results/recipe_isbi.json [...]
    python -m benchmarks import-legacy --attribute-commits
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import tempfile
from pathlib import Path

from benchmarks.harness import RESULTS, ROOT, records_path, relative_paths
from benchmarks.recipe_common import SETTING_KEYS

# legacy file stem -> (suite, case prefix); a dict of variants unless listed in REPORTS
SUITES = {
    "recipe_pets": "recipe_pets", "recipe_isbi": "recipe_isbi",
    "recipe_camvid": "recipe_camvid", "recipe_dsb": "recipe_dsb",
    "recipe_dsb_no_tta": "recipe_dsb", "shipped_models": "ship_models",
    "finetune": "finetune_bench",
}
# stems of one-report files -> suite (the stem itself is the case, or the speed section)
REPORTS = {
    "speed": "speed", "speed_avx2": "speed", "speed_avx2_noxla": "speed",
    "speed_avx2_rerun": "speed", "speed_knobs": "speed_knobs",
    "speed_knobs_avx2": "speed_knobs", "speed_layers_avx2": "speed_layers",
    "speed_layers_fast_avx2": "speed_layers", "speed_presets": "speed_presets",
    "xla_quality": "xla_quality", "gpu_check": "gpu_check", "gpu_check_256": "gpu_check",
    "gpu_check_fast_256": "gpu_check", "export_bench": "export_bench",
    "web_latency": "web_bench", "large_image": "large_image",
    "large_image_small": "large_image",
}
# top-level keys of a report that describe the run rather than measure it
REPORT_SETTINGS = {"settings", "args", "command", "quick", "preset", "precision", "size",
                   "batch", "repeats", "steps", "tile", "overlap", "tile_batch", "image",
                   "parameters", "params", "note", "seeds", "epochs", "data"}
HOST_KEYS = {"host", "machine", "cpu", "written"}
SPEED_SECTIONS = ("train", "pipeline", "inference")


def legacy_date(text: str | None) -> str | None:
    """``2026-11-27 12:48 UTC`` (the legacy ``written``) as ``2026-11-27T12:48:00Z``."""
    if not text:
        return None
    found = re.match(r"(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d)(?::(\d\d))?", text)
    return f"{found[1]}T{found[2]}:{found[3] or '00'}Z" if found else text


def legacy_host(*sources) -> dict:
    """A record's host from whatever a legacy file said of it (the first source that says
    something wins a field): a ``host`` dict (speed, GPU), a ``cpu`` dict or string, a
    ``machine`` string."""
    found: dict = {}
    for source in sources:
        if not source:
            continue
        if isinstance(source, str):
            found.setdefault("description", source)
            continue
        cpu = source.get("cpu")
        if isinstance(cpu, dict):
            found.setdefault("cpu", cpu.get("model"))
            flags = cpu.get("flags")
            if isinstance(flags, dict):
                flags = [f for f, present in flags.items() if present]
            if flags is not None:
                found.setdefault("flags", sorted(flags))
            for key in ("cores", "usable_cores"):
                if cpu.get(key) is not None:
                    found.setdefault(key, cpu[key])
            if cpu.get("onednn_max_cpu_isa"):
                found.setdefault("env", {"ONEDNN_MAX_CPU_ISA": cpu["onednn_max_cpu_isa"]})
        elif isinstance(cpu, str):
            found.setdefault("description", cpu)
        if "versions" in source:
            found.setdefault("versions", source["versions"])
        if "device" in source:  # gpu_check: Keras on JAX
            found.setdefault("gpus", [source["device"].removeprefix("gpu: ")])
            found.setdefault("versions", {k: source[k] for k in
                                          ("python", "keras", "jax", "backend") if k in source})
        if isinstance(source.get("machine"), str):
            found.setdefault("description", source["machine"])
        if isinstance(source.get("line"), str):
            found.setdefault("description", source["line"])
    if "description" in found and "cores" not in found:
        cores = re.search(r"(\d+)[ -]cores?", found["description"])
        if cores:
            found["cores"] = int(cores[1])
    return found


def convert(path: Path) -> list[dict]:
    """The records of one legacy file (nothing written)."""
    stem = path.stem
    data = json.loads(path.read_text())
    name = path.name
    if stem in SUITES:
        return _variants(SUITES[stem], data, name, "_no_tta" if stem.endswith("_no_tta") else "")
    if stem in REPORTS:
        return _report(REPORTS[stem], stem, data, name)
    known = ", ".join(sorted([*SUITES, *REPORTS]))
    raise SystemExit(f"{path}: no legacy format known for {stem!r}; known: {known}")


def _entry(suite, case, host, date, settings, metrics, legacy) -> dict:
    return relative_paths({"suite": suite, "case": case, "commit": None, "date": date,
                           "host": host, "settings": settings, "metrics": metrics,
                           "legacy": legacy})


def _variants(suite: str, data: dict, legacy: str, suffix: str) -> list[dict]:
    shared = {k: v for k, v in data.items() if not isinstance(v, dict)}
    records = []
    for case, result in data.items():
        if not isinstance(result, dict):
            continue
        settings = {k: v for k, v in result.items() if k in SETTING_KEYS}
        metrics = {k: v for k, v in result.items() if k not in SETTING_KEYS | {"cpu"}}
        if shared.get("note"):
            settings.setdefault("file_note", shared["note"])
        host = legacy_host(result, shared.get("machine"))
        records.append(_entry(suite, case + suffix, host, legacy_date(shared.get("written")),
                              settings, metrics, legacy))
    return records


def _report(suite: str, stem: str, data: dict, legacy: str) -> list[dict]:
    host = legacy_host(data.get("host"), data.get("cpu"), data.get("machine"))
    settings = {k: v for k, v in data.items() if k in REPORT_SETTINGS}
    settings["file"] = legacy
    if suite == "speed":  # one record per section, each with its own date
        shared = {k: v for k, v in data.items()
                  if k not in HOST_KEYS | REPORT_SETTINGS | set(SPEED_SECTIONS)}
        return [_entry(suite, f"{stem}:{section}", host,
                       legacy_date(data[section].get("written")), settings,
                       {**shared, **{k: v for k, v in data[section].items() if k != "written"}},
                       legacy)
                for section in SPEED_SECTIONS if isinstance(data.get(section), dict)]
    metrics = {k: v for k, v in data.items() if k not in HOST_KEYS | REPORT_SETTINGS}
    return [_entry(suite, stem, host, legacy_date(data.get("written")), settings, metrics,
                   legacy)]


def import_file(path: Path, results: Path = RESULTS) -> tuple[str, int]:
    """Replace the records imported from ``path`` before by its records now; returns the
    suite and how many were written."""
    records = convert(path)
    suite = records[0]["suite"] if records else (SUITES.get(path.stem) or REPORTS[path.stem])
    target = results / records_path(suite).name
    kept = []
    if target.exists():
        kept = [line for line in target.read_text().splitlines()
                if line.strip() and json.loads(line).get("legacy") != path.name]
    # imported records go first: they are older than anything the harness recorded
    lines = [json.dumps(r) for r in records]
    legacy_lines = [line for line in kept if json.loads(line).get("legacy")]
    new_lines = [line for line in kept if not json.loads(line).get("legacy")]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join([*legacy_lines, *lines, *new_lines]) + "\n")
    return suite, len(records)


def append_run(path: Path, cases: list[str], sha: str, results: Path = RESULTS) -> tuple[str, int]:
    """Append the records of ``cases`` in ``path`` as runs made at commit ``sha`` (a checkout
    older than the harness that wrote the legacy format): not marked legacy, never replaced."""
    records = [r for r in convert(path) if r["case"] in cases]
    missing = sorted(set(cases) - {r["case"] for r in records})
    if missing:
        raise SystemExit(f"{path}: no case(s) {missing}")
    target = results / records_path(records[0]["suite"]).name
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a") as f:
        for entry in records:
            entry.pop("legacy")
            f.write(json.dumps({**entry, "commit": sha}) + "\n")
    return records[0]["suite"], len(records)


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)


def _key(entry: dict) -> str:
    """A record's numbers, less what a speed file shares across its sections (the matmul
    peak of whichever section ran last)."""
    metrics = entry["metrics"]
    if entry["suite"] == "speed":
        metrics = {k: v for k, v in metrics.items() if k != "matmul_peak"}
    return json.dumps(metrics, sort_keys=True)


def written_at(name: str) -> dict[str, str]:
    """case -> the commit that wrote its numbers into the legacy file ``name`` (short sha):
    the oldest version of ``benchmarks/results/NAME`` from which the case's record stays
    the same up to the file's last version in git history."""
    shas = _git("log", "--reverse", "--format=%h", "--", f"benchmarks/results/{name}").stdout
    versions: list[tuple[str, dict[str, str]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for sha in shas.split():
            shown = _git("show", f"{sha}:benchmarks/results/{name}")
            if shown.returncode:  # the commit that deleted the file
                continue
            path = Path(tmp) / name
            path.write_text(shown.stdout)
            try:
                versions.append((sha, {r["case"]: _key(r) for r in convert(path)}))
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # an early version in a format convert() does not read
    found: dict[str, str] = {}
    if not versions:
        return found
    for case, last in versions[-1][1].items():
        for sha, cases in reversed(versions):
            if cases.get(case) != last:
                break
            found[case] = sha
    return found


def attribute_commits(results: Path = RESULTS) -> int:
    """Fill ``commit`` (and ``commit_source``) of legacy records from git history where the
    legacy file's last version in git holds exactly the record's numbers; returns how many."""
    done = 0
    for target in sorted(results.glob("*.jsonl")):
        entries = [json.loads(line) for line in target.read_text().splitlines() if line.strip()]
        names = sorted({e["legacy"] for e in entries if e.get("legacy") and not e["commit"]})
        changed = False
        for name in names:
            commits = written_at(name)
            final = {}
            with tempfile.TemporaryDirectory() as tmp:
                last = _git("log", "-1", "--format=%h", "--diff-filter=AM", "--",
                            f"benchmarks/results/{name}").stdout.strip()
                if last:
                    path = Path(tmp) / name
                    path.write_text(_git("show", f"{last}:benchmarks/results/{name}").stdout)
                    final = {r["case"]: _key(r) for r in convert(path)}
            for entry in entries:
                case = entry["case"]
                if (entry.get("legacy") != name or entry["commit"] or case not in commits
                        or final.get(case) != _key(entry)):
                    continue  # not this file's, or its numbers differ from git's: no guess
                entry["commit"] = commits[case]
                entry["commit_source"] = (f"git log -- benchmarks/results/{name}: the commit "
                                          "that wrote these numbers, attributed after the fact")
                changed = True
                done += 1
        if changed:
            target.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return done


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks import-legacy",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="legacy results files (.json)")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="folder of the .jsonl records (default: benchmarks/results)")
    parser.add_argument("--cases", type=lambda t: t.split(","), metavar="A,B",
                        help="with --commit: append only these cases, as new runs")
    parser.add_argument("--commit", metavar="SHA",
                        help="the commit the --cases were run at (an older checkout)")
    parser.add_argument("--attribute-commits", action="store_true",
                        help="give legacy records the commit that wrote them, from git history")
    args = parser.parse_args(argv)
    if args.attribute_commits:
        print(f"{attribute_commits(args.results)} legacy records given their commit")
        return 0
    if not args.files:
        parser.error("name legacy files, or --attribute-commits")
    if bool(args.cases) != bool(args.commit):
        parser.error("--cases and --commit go together")
    for path in args.files:
        if not path.is_file():
            parser.error(f"{path}: no such file")
        if args.commit:
            suite, count = append_run(path, args.cases, args.commit, args.results)
        else:
            suite, count = import_file(path, args.results)
        shown = args.results / f"{suite}.jsonl"
        shown = shown.relative_to(ROOT) if shown.is_relative_to(ROOT) else shown
        print(f"{path.name}: {count} records -> {shown}")
    return 0
