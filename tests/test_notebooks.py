"""The tutorial notebooks: committed outputs are sound, and each notebook runs top to bottom.

Two kinds of checks:

- Structure of the committed notebooks (milliseconds, no kernel): every code cell ran, in
  order (execution counts 1..n), without errors, from a full (not smoke) run, and no code
  cell changed after its outputs were made; cells that draw a picture carry one.
- Execution (the slow part, about a minute per notebook on 2 cores): each notebook runs in a
  fresh kernel in its smoke configuration (``UNET_TF_SMOKE=1``), on an in-memory copy, so
  the committed outputs are never touched. Set ``UNET_TF_SKIP_NOTEBOOK_RUNS=1`` to skip it.

The committed outputs are made by this file run as a script, which executes notebooks in
place from ``notebooks/`` and stamps a hash of their code cells into the metadata::

    nice -n 10 python tests/test_notebooks.py notebooks/01_quickstart_oxford_pets.ipynb
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
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


def code_hash(nb) -> str:
    """Hash of the code cells' sources: outputs are stale when it no longer matches."""
    sources = [cell.source for cell in nb.cells if cell.cell_type == "code"]
    return hashlib.sha256(json.dumps(sources).encode()).hexdigest()


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
    stamp = nb.metadata.get(STAMP, {})
    if not committed:
        return problems
    if not stamp:
        problems.append(f"no '{STAMP}' metadata: outputs were not made by the executor script")
    else:
        if stamp.get("code_sha256") != code_hash(nb):
            problems.append(
                "code cells changed after the outputs were made (code hash mismatch): "
                "re-execute the notebook"
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


# --------------------------------------------------------------------------- execution


@pytest.fixture(scope="module")
def smoke_work_dir(tmp_path_factory):
    """One folder for the whole module, so later notebooks reuse notebook 01's smoke model."""
    return tmp_path_factory.mktemp("notebooks")


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
