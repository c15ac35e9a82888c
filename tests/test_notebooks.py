"""The tutorial notebooks: committed outputs are sound, and each notebook runs top to bottom.

Two kinds of checks:

- Structure of the committed notebooks (milliseconds, no kernel): every code cell ran, in
  order (execution counts 1..n), without errors, from a full (not smoke) run, and neither
  a code cell nor the ``unet_tf`` package changed after the outputs were made; cells that
  draw a picture carry one; outputs hold no absolute machine paths (``/work/...``,
  ``/tmp/...``: paths print relative to ``notebooks/``) and no TensorFlow / absl INFO lines.
  The benchmark results (``benchmarks/results/*.json``, ``*.md``) carry no machine paths.
- Execution (``slow``, about a minute per notebook on 2 cores): each notebook runs in a
  fresh kernel in its smoke configuration (``UNET_TF_SMOKE=1``), on an in-memory copy, so
  the committed outputs are never touched, and its outputs pass the same checks. Deselect
  with ``-m "not slow"`` or set ``UNET_TF_SKIP_NOTEBOOK_RUNS=1``.

The committed outputs are made by this file run as a script, which executes notebooks in
place from ``notebooks/`` and stamps a hash of their code cells and of every
``unet_tf/**/*.py`` file into the metadata. After any change to the package, refresh all
four, in order (03 and 04 start from 01's model, 04 compares with 03's export; 10-14 minutes
in all on 2 cores)::

    nice -n 10 python tests/test_notebooks.py notebooks/0*.ipynb
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
PACKAGE_DIR = REPO / "unet_tf"  # its sources are part of the freshness stamp
RESULTS_DIR = REPO / "benchmarks" / "results"
NOTEBOOKS = [
    "01_quickstart_oxford_pets.ipynb",
    "02_fine_tune_your_data.ipynb",
    "03_export_to_mobile.ipynb",
    "04_background_blur.ipynb",
]
SMOKE_ENV = "UNET_TF_SMOKE"
WORK_DIR_ENV = "UNET_TF_WORK_DIR"
STAMP = "unet_tf"  # notebook metadata key written by the executor below
CELL_TIMEOUT_S = 600
# A cell that displays a picture must carry one: tagged "plot", or showing an image file.
PLOT_SOURCE = re.compile(r"display\(Image\(|plt\.show\(")
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")
TEXT_TYPES = ("text/plain", "text/html", "text/markdown")
# An absolute path under a machine's top-level folders, wherever it starts: a line, a
# quote, a spec ("folder:/work/..."). Relative paths ("../../tmp/x") and URLs do not match.
MACHINE_ROOTS = {"home", "mnt", "opt", "private", "root", "scratch", "tmp", "Users", "var", "work"}
# ... and this machine's own: where the repository, the home folder and temporary files live
MACHINE_ROOTS |= {Path(p).parts[1] for p in (REPO, Path.home(), tempfile.gettempdir())
                  if len(Path(p).parts) > 1}
MACHINE_PATH = re.compile(
    r"(?<![\w.~/\\-])/(?:" + "|".join(map(re.escape, sorted(MACHINE_ROOTS))) + r")(?:/|\b)"
)
# Python-side TensorFlow / absl INFO records and absl's C++ lines ("I0000 00:00:17...")
LOG_NOISE = re.compile(r"^(?:INFO:(?:tensorflow|absl):|I\d{4} \d\d:\d\d:\d\d)", re.M)


def code_hash(nb, package: Path = PACKAGE_DIR) -> str:
    """Hash of the code cells' sources and of the package's ``.py`` files (path and bytes).

    Outputs are stale when it no longer matches: the notebook or the code it calls changed.
    """
    sources = [cell.source for cell in nb.cells if cell.cell_type == "code"]
    digest = hashlib.sha256(json.dumps(sources).encode())
    for path in sorted(package.rglob("*.py"), key=lambda p: p.relative_to(package).as_posix()):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def machine_paths(text: str) -> list[str]:
    """The lines of ``text`` that hold an absolute machine path."""
    return [line.strip() for line in text.splitlines() if MACHINE_PATH.search(line)]


def output_text(out) -> str:
    """The readable text of one output (streams, text representations, error messages)."""
    if out.output_type == "stream":
        return out.text
    if out.output_type == "error":
        return f"{out.ename}: {out.evalue}"
    data = out.get("data", {})
    return "\n".join(str(data[kind]) for kind in TEXT_TYPES if kind in data)


def is_plot_cell(cell) -> bool:
    return "plot" in cell.metadata.get("tags", []) or bool(PLOT_SOURCE.search(cell.source))


def structure_problems(nb, committed: bool = True) -> list[str]:
    """Everything wrong with a notebook's outputs, as readable lines.

    ``committed`` adds the checks on the executor's stamp (full run, code unchanged since).
    """
    problems = []
    code_cells = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    counts = [c.execution_count for c in code_cells]
    if counts != list(range(1, len(code_cells) + 1)):
        problems.append(
            f"execution counts are {counts}, expected 1..{len(code_cells)} in order: run the "
            "notebook top to bottom in a fresh kernel (see this file's docstring)"
        )
    for index, cell in enumerate(code_cells):
        where = f"code cell {index + 1} ({cell.source.splitlines()[0][:60]!r})"
        for out in cell.outputs:
            if out.output_type == "error":
                problems.append(f"{where}: error output {out.ename}: {out.evalue}")
            elif out.output_type == "stream" and "Traceback (most recent call last)" in out.text:
                problems.append(f"{where}: a traceback in its {out.name} stream")
        if is_plot_cell(cell):
            kinds = {
                kind
                for out in cell.outputs
                if out.output_type in ("display_data", "execute_result")
                for kind in out.get("data", {})
            }
            if not kinds & set(IMAGE_TYPES):
                problems.append(f"{where}: draws a plot but has no image output")
        text = "\n".join(output_text(out) for out in cell.outputs)
        for line in machine_paths(text)[:3]:
            problems.append(f"{where}: an absolute machine path in its output (print paths "
                            f"relative to notebooks/): {line[:120]!r}")
        for line in LOG_NOISE.findall(text)[:1]:
            problems.append(f"{where}: TensorFlow / absl log lines in its output ({line!r}...)")
    stamp = nb.metadata.get(STAMP, {})
    if not committed:
        return problems
    if not stamp:
        problems.append(f"no '{STAMP}' metadata: outputs were not made by the executor script")
    else:
        if stamp.get("code_sha256") != code_hash(nb):
            problems.append(
                "code cells or the unet_tf package changed after the outputs were made (code "
                "hash mismatch): re-execute the notebooks (see this file's docstring)"
            )
        if stamp.get("smoke"):
            problems.append("outputs come from a smoke run; commit a full run's outputs")
    return problems


def execute(nb, cwd: Path, timeout: int = CELL_TIMEOUT_S):
    """Run ``nb`` (in place, in memory) in a fresh python3 kernel started in ``cwd``."""
    from nbclient import NotebookClient

    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
        # TensorFlow's C++ start-up lines (CUDA probing, oneDNN) are not notebook content
        extra_arguments=["--IPKernelApp.capture_fd_output=False"],
    )
    client.execute()
    return nb


# --------------------------------------------------------------------------- structure


@pytest.mark.slow  # fails after any package change until the notebooks are re-executed
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_outputs_are_complete_and_current(name):
    path = NOTEBOOK_DIR / name
    assert path.exists(), f"{path} is missing"
    nb = nbformat.read(path, as_version=4)
    problems = structure_problems(nb)
    assert not problems, f"{name}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_opens_with_a_smoke_switch_and_has_plots(name):
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert SMOKE_ENV in first_code.source, "the first code cell must read the smoke switch"
    assert any(is_plot_cell(c) for c in nb.cells if c.cell_type == "code"), "no plot cells"
    assert (NOTEBOOK_DIR / name).stat().st_size < 2_000_000, "keep notebooks under 2 MB"


def test_every_notebook_in_the_folder_is_checked():
    assert sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb")) == NOTEBOOKS


@pytest.mark.parametrize(
    "name", sorted(p.name for p in RESULTS_DIR.glob("*") if p.suffix in (".json", ".md"))
)
def test_benchmark_results_carry_no_machine_paths(name):
    found = machine_paths((RESULTS_DIR / name).read_text())
    assert not found, (
        f"benchmarks/results/{name} holds absolute machine paths; write them relative to the "
        "repository root (../shared/data/..., saved_models/...):\n  " + "\n  ".join(found[:5])
    )


def test_machine_path_finder():
    flagged = ["oxford-pets:/work/shared/data split val", "wrote '/tmp/x.png'",
               "/root/.pyenv/lib/tqdm/auto.py:21: TqdmWarning", "(/home/me)"]
    clean = ["oxford-pets:../../shared/data", "../../../tmp/pytest-of-root/notebooks0",
             "https://www.robots.ox.ac.uk/~vgg/data/pets/", "15/15 - 5s - 335ms/step",
             "saved_models/notebooks/01_quickstart", "folder:~/tmp/x", "a/tmp/b"]
    assert [machine_paths(text) for text in flagged] == [[text] for text in flagged]
    assert [machine_paths(text) for text in clean] == [[] for _ in clean]


def test_code_hash_covers_the_package_source(tmp_path):
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[new_code_cell("x = 1")])
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.py").write_text("A = 1\n")
    (tmp_path / "README.md").write_text("not code")
    before = code_hash(nb, tmp_path)
    (tmp_path / "README.md").write_text("still not code")
    assert code_hash(nb, tmp_path) == before
    (tmp_path / "sub" / "a.py").write_text("A = 2\n")
    assert code_hash(nb, tmp_path) != before
    assert code_hash(nb) != code_hash(nb, tmp_path)  # the real package counts by default


def test_structure_check_catches_errors_stale_and_missing_plots():
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    cells = [
        new_code_cell("x = 1", execution_count=1),
        new_code_cell("display(Image(filename=p))", execution_count=2),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata[STAMP] = {"code_sha256": code_hash(nb), "smoke": False}
    assert structure_problems(nb) == [
        "code cell 2 ('display(Image(filename=p))'): draws a plot but has no image output"
    ]
    cells[1].outputs = [new_output("display_data", data={"image/png": "iVBO"})]
    assert structure_problems(nb) == []
    cells[0].outputs = [new_output("error", ename="ValueError", evalue="bad", traceback=[])]
    cells[1].execution_count = 5
    cells[1].source += "\n# edited later"
    found = "\n".join(structure_problems(nb))
    assert "error output ValueError" in found
    assert "execution counts are [1, 5]" in found
    assert "code hash mismatch" in found
    cells[0].outputs = [
        new_output("stream", name="stdout", text="writing to /work/main/saved_models\n"),
        new_output("stream", name="stderr", text="INFO:tensorflow:Assets written to: x\n"),
    ]
    found = "\n".join(structure_problems(nb, committed=False))
    assert "absolute machine path" in found and "/work/main/saved_models" in found
    assert "TensorFlow / absl log lines" in found


# --------------------------------------------------------------------------- execution


@pytest.fixture(scope="module")
def smoke_work_dir(tmp_path_factory):
    """One folder for the whole module, so later notebooks reuse notebook 01's smoke model."""
    return tmp_path_factory.mktemp("notebooks")


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("UNET_TF_SKIP_NOTEBOOK_RUNS") == "1", reason="UNET_TF_SKIP_NOTEBOOK_RUNS=1"
)
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_top_to_bottom_in_smoke_mode(name, smoke_work_dir, monkeypatch):
    """Slow (tens of seconds each): a fresh kernel runs every cell of a copy of the notebook."""
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv(SMOKE_ENV, "1")
    monkeypatch.setenv(WORK_DIR_ENV, str(smoke_work_dir))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    before = sorted(NOTEBOOK_DIR.rglob("*"))
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)  # a copy in memory; never written
    execute(nb, NOTEBOOK_DIR)
    problems = structure_problems(nb, committed=False)
    assert not problems, f"{name} in smoke mode:\n  " + "\n  ".join(problems)
    assert sorted(NOTEBOOK_DIR.rglob("*")) == before, "the notebook wrote into notebooks/"


# --------------------------------------------------------------------------- executor


def main(argv: list[str] | None = None) -> int:
    """Execute notebooks in place (full run unless --smoke) and stamp their code hash."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--smoke", action="store_true", help=f"set {SMOKE_ENV}=1")
    args = parser.parse_args(argv)
    if args.smoke:
        os.environ[SMOKE_ENV] = "1"
    else:
        os.environ.pop(SMOKE_ENV, None)
    for path in args.notebooks:
        path = path.resolve()
        nb = nbformat.read(path, as_version=4)
        start = time.time()
        print(f"executing {path.name} ({'smoke' if args.smoke else 'full'} run)", flush=True)
        execute(nb, path.parent, timeout=3600)
        seconds = round(time.time() - start, 1)
        nb.metadata[STAMP] = {"code_sha256": code_hash(nb), "smoke": args.smoke, "seconds": seconds}
        nbformat.write(nb, path)
        print(f"{path.name}: {seconds} s, {path.stat().st_size / 1e6:.2f} MB", flush=True)
        for problem in structure_problems(nb):
            print(f"  problem: {problem}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
