"""The browser page of a run that carries its own int8 .tflite: the shipped models.

``unet-tf serve-web pets`` needs no export step: a shipped model folder holds
``model_int8.tflite`` beside its ``config.json``, so its page is written once into the user
cache (``$UNET_TF_CACHE/pages/NAME``) and served from there.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from unet_tf.web.page import MODELS, write_web
from unet_tf.web.runtime import cache_root

CONFIG_FILE = "config.json"


def page_for_run(run: str | Path, runtime: str | Path | None = None) -> Path:
    """Write (or reuse) the page of a run directory holding ``model_int8.tflite``.

    Raises:
        FileNotFoundError: the run has no int8 .tflite (the message says how to export one).
        ValueError: the run was trained at native resolution (see :func:`write_web`).

    Examples:
        >>> page_for_run("saved_models/pets")  # doctest: +SKIP
        PosixPath('/home/me/.cache/unet_tf/pages/pets/web')
    """
    from unet_tf.quiet import import_tensorflow

    import_tensorflow()  # describing the .tflite loads TensorFlow: without its C++ chatter
    from unet_tf.deploy.tflite import describe_tflite

    run = Path(run)
    name = MODELS["int8"]
    if not (run / name).is_file():
        raise FileNotFoundError(
            f"{run} has no {name}; export its page first: unet-tf export --model {run} "
            f"--out {run.name}-export --formats tflite-int8,web, then serve-web that folder")
    config = json.loads((run / CONFIG_FILE).read_text())
    content = (run / name).read_bytes()
    config["export"] = {"tflite": {name: describe_tflite(content, "tflite-int8")}}
    folder = cache_root() / "pages" / run.name
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:  # write_web reads an export folder
        (Path(tmp) / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        shutil.copy2(run / name, Path(tmp) / name)
        return write_web(tmp, model="int8", out=folder / "web", runtime=runtime)
