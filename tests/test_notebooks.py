"""The tutorial notebooks: committed outputs are sound, and each notebook runs top to bottom.

Two kinds of checks:

- Structure of the committed notebooks (milliseconds, no kernel): every code cell ran, in
  order (execution counts 1..n), without errors, from a full (not smoke) run, and neither
  a code cell nor a ``unet_tf`` file the notebook loaded changed after the outputs were
  made; cells that draw a picture carry one; outputs hold no absolute machine paths
  (``/work/...``, ``/tmp/...``: paths print relative to ``notebooks/``) and no TensorFlow /
  absl INFO lines.
  The benchmark results (``benchmarks/results/*.json``, ``*.md``) carry no machine paths.
- Execution (``slow``, about a minute per notebook on 2 cores): each notebook runs in a
  fresh kernel in its smoke configuration (``UNET_TF_SMOKE=1``), on an in-memory copy, so
  the committed outputs are never touched, and its outputs pass the same checks. Deselect
  with ``-m "not slow"`` or set ``UNET_TF_SKIP_NOTEBOOK_RUNS=1``.

The committed outputs are made by this file run as a script, which executes notebooks in
place from ``notebooks/``. After the last cell it asks the kernel which ``unet_tf`` modules
it loaded (a probe cell that is not saved) and stamps into the metadata the list of their
files (``package_files``, relative to the repository root) and a hash of the code cells and
of exactly those files. A change elsewhere in the package (a new subpackage, a module the
notebook never imports) leaves the outputs current; an edit to a listed file, or its
removal, makes them stale. Refresh stale ones by running all four, in order (03 and 04
start from 01's model, 04 compares with 03's export; 10-14 minutes in all on 2 cores)::

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
# Run after the last cell, in the same kernel, and not saved: the files of the unet_tf
# modules the notebook loaded (imported directly or lazily by the package), one JSON line.
PROBE_MARK = "unet_tf package files: "
PROBE = f"""import json as _json, sys as _sys
print({PROBE_MARK!r} + _json.dumps(sorted(
    _m.__file__ for _n, _m in list(_sys.modules.items())
    if (_n == "unet_tf" or _n.startswith("unet_tf.")) and getattr(_m, "__file__", None)
)))"""
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


def code_hash(nb, files: list[str], root: Path = REPO) -> str:
    """Hash of the code cells' sources and of ``files`` (paths under ``root``: path and bytes).

    ``files`` are the package files the notebook loaded (the stamp's ``package_files``).
    Outputs are stale when the hash no longer matches: the notebook or the code it ran
    changed; a listed file that no longer exists counts as a change.
    """
    sources = [cell.source for cell in nb.cells if cell.cell_type == "code"]
    digest = hashlib.sha256(json.dumps(sources).encode())
    for name in sorted(files):
        path = root / name
        data = path.read_bytes() if path.is_file() else None
        size = "missing" if data is None else str(len(data))  # length-prefixed: no ambiguity
        digest.update(f"\0{name}\0{size}\0".encode())
        digest.update(data or b"")
    return digest.hexdigest()


def package_files(module_files: list[str], root: Path = REPO) -> list[str]:
    """The kernel's module files as sorted paths relative to ``root`` (``unet_tf/...``).

    Raises:
        ValueError: a module was loaded from outside ``root`` (an installed copy of
            ``unet_tf`` rather than this checkout), so its edits could not be tracked.
    """
    names = set()
    for file in module_files:
        path = Path(file).resolve()
        if not path.is_relative_to(root.resolve()):
            raise ValueError(
                f"the notebook kernel loaded {file}, outside the repository {root}: install "
                "this checkout in the kernel's environment (pip install -e .) and re-execute"
            )
        names.add(path.relative_to(root.resolve()).as_posix())
    return sorted(names)


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


def structure_problems(nb, committed: bool = True, root: Path = REPO) -> list[str]:
    """Everything wrong with a notebook's outputs, as readable lines.

    ``committed`` adds the checks on the executor's stamp (full run, and neither the code
    cells nor the package files it lists, under ``root``, changed since).
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
        return problems
    if "package_files" not in stamp:
        problems.append(
            "the stamp lists no package_files (made before stamps recorded the unet_tf files a "
            "notebook loads): re-execute the notebooks (see this file's docstring)"
        )
    elif stamp.get("code_sha256") != code_hash(nb, stamp["package_files"], root):
        gone = [name for name in stamp["package_files"] if not (root / name).is_file()]
        problems.append(
            "code cells or a unet_tf file the notebook loaded changed after the outputs were "
            "made (code hash mismatch" + (f"; gone: {', '.join(gone[:3])}" if gone else "")
            + "): re-execute the notebooks (see this file's docstring)"
        )
    if stamp.get("smoke"):
        problems.append("outputs come from a smoke run; commit a full run's outputs")
    return problems


def execute(nb, cwd: Path, timeout: int = CELL_TIMEOUT_S) -> list[str]:
    """Run ``nb`` (in place, in memory) in a fresh python3 kernel started in ``cwd``.

    Returns the ``unet_tf`` files the kernel had loaded at the end (see ``package_files``),
    asked by a probe cell that runs last and is removed again.
    """
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell

    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
        # TensorFlow's C++ start-up lines (CUDA probing, oneDNN) are not notebook content
        extra_arguments=["--IPKernelApp.capture_fd_output=False"],
    )
    probe = new_code_cell(PROBE)
    nb.cells.append(probe)
    try:
        client.execute()
    finally:
        nb.cells.remove(probe)
    lines = [
        line[len(PROBE_MARK):]
        for out in probe.outputs
        if out.output_type == "stream"
        for line in out.text.splitlines()
        if line.startswith(PROBE_MARK)
    ]
    if len(lines) != 1:
        raise RuntimeError(f"the module probe printed no list of files: {probe.outputs}")
    return package_files(json.loads(lines[0]))


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
    (tmp_path / "unet_tf").mkdir()
    (tmp_path / "unet_tf" / "a.py").write_text("A = 1\n")
    (tmp_path / "unet_tf" / "b.py").write_text("B = 1\n")
    files = ["unet_tf/b.py", "unet_tf/a.py"]
    before = code_hash(nb, files, tmp_path)
    assert code_hash(nb, sorted(files), tmp_path) == before  # the order recorded does not count
    (tmp_path / "unet_tf" / "a.py").write_text("A = 2\n")
    assert code_hash(nb, files, tmp_path) != before
    (tmp_path / "unet_tf" / "a.py").write_text("A = 1\n")
    assert code_hash(nb, files, tmp_path) == before
    (tmp_path / "unet_tf" / "a.py").unlink()  # a listed file that vanished is a change
    assert code_hash(nb, files, tmp_path) != before
    gone = code_hash(nb, files, tmp_path)
    (tmp_path / "unet_tf" / "a.py").write_text("")  # ... and not the same as an empty file
    assert code_hash(nb, files, tmp_path) not in (before, gone)
    edited = new_notebook(cells=[new_code_cell("x = 2")])
    assert code_hash(edited, [], tmp_path) != code_hash(nb, [], tmp_path)  # cells count too


def test_stamp_stays_current_after_edits_outside_its_files_only(tmp_path):
    from nbformat.v4 import new_code_cell, new_notebook

    package = tmp_path / "unet_tf"
    (package / "wsi").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "model.py").write_text("def build(): ...\n")
    (package / "cli.py").write_text("def main(): ...\n")
    nb = new_notebook(cells=[new_code_cell("import unet_tf.model", execution_count=1)])
    files = ["unet_tf/__init__.py", "unet_tf/model.py"]
    nb.metadata[STAMP] = {"code_sha256": code_hash(nb, files, tmp_path),
                          "package_files": files, "smoke": False}
    assert structure_problems(nb, root=tmp_path) == []
    (package / "cli.py").write_text("def main(): return 1\n")  # loaded by no notebook
    (package / "wsi" / "__init__.py").write_text("")  # a new subpackage
    assert structure_problems(nb, root=tmp_path) == []
    (package / "model.py").write_text("def build(): return 1\n")
    assert "code hash mismatch" in "\n".join(structure_problems(nb, root=tmp_path))
    (package / "model.py").unlink()
    assert "gone: unet_tf/model.py" in "\n".join(structure_problems(nb, root=tmp_path))
    del nb.metadata[STAMP]["package_files"]  # a stamp from before the list was recorded
    assert "lists no package_files" in "\n".join(structure_problems(nb, root=tmp_path))


def test_package_files_are_the_loaded_modules_relative_to_the_repository(tmp_path, capsys):
    import unet_tf.config  # noqa: F401  (the probe lists what this process has loaded)

    exec(PROBE, {})
    printed = capsys.readouterr().out
    assert printed.startswith(PROBE_MARK)
    files = package_files(json.loads(printed[len(PROBE_MARK):]))
    assert {"unet_tf/__init__.py", "unet_tf/config.py"} <= set(files)
    assert files == sorted(files) and all(f.startswith("unet_tf/") for f in files)
    with pytest.raises(ValueError, match="outside the repository"):
        package_files([str(tmp_path / "site-packages" / "unet_tf" / "__init__.py")])


def test_executor_stamps_the_package_files_its_kernel_loaded(tmp_path, monkeypatch):
    """About a second: a fresh kernel runs a two-cell notebook through the script's main()."""
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    from nbformat.v4 import new_code_cell, new_notebook

    monkeypatch.delenv(SMOKE_ENV, raising=False)
    path = tmp_path / "t.ipynb"
    cells = [new_code_cell(f"import os\nos.environ.get({SMOKE_ENV!r})"),
             new_code_cell("from unet_tf.config import ModelConfig")]
    nbformat.write(new_notebook(cells=cells), path)
    assert main([str(path)]) == 0
    nb = nbformat.read(path, as_version=4)
    assert [c.source for c in nb.cells] == [c.source for c in cells]  # the probe is not saved
    stamp = nb.metadata[STAMP]
    assert {"unet_tf/__init__.py", "unet_tf/config.py"} <= set(stamp["package_files"])
    assert not any(f.startswith(("unet_tf/wsi/", "unet_tf/cli/")) for f in stamp["package_files"])
    assert structure_problems(nb) == []


def test_structure_check_catches_errors_stale_and_missing_plots():
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    cells = [
        new_code_cell("x = 1", execution_count=1),
        new_code_cell("display(Image(filename=p))", execution_count=2),
    ]
    nb = new_notebook(cells=cells)
    files = ["unet_tf/__init__.py", "unet_tf/model.py"]
    nb.metadata[STAMP] = {"code_sha256": code_hash(nb, files), "package_files": files,
                          "smoke": False}
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
    files = execute(nb, NOTEBOOK_DIR)
    assert "unet_tf/__init__.py" in files, f"the module probe found no unet_tf files: {files}"
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
        files = execute(nb, path.parent, timeout=3600)
        seconds = round(time.time() - start, 1)
        nb.metadata[STAMP] = {
            "code_sha256": code_hash(nb, files),
            "package_files": files,  # what the kernel loaded; only these count for freshness
            "smoke": args.smoke,
            "seconds": seconds,
        }
        nbformat.write(nb, path)
        print(f"{path.name}: {seconds} s, {path.stat().st_size / 1e6:.2f} MB, "
              f"{len(files)} unet_tf files loaded", flush=True)
        for problem in structure_problems(nb):
            print(f"  problem: {problem}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
