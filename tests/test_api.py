import os
import subprocess
import sys

import unet_tf


def test_no_module_shadows_a_public_function():
    import importlib
    import pkgutil

    modules = {m.name.rsplit(".", 1)[-1]
               for m in pkgutil.walk_packages(unet_tf.__path__, "unet_tf.")}
    functions = {name for name in unet_tf.__all__ if callable(getattr(unet_tf, name))}
    assert not modules & functions, modules & functions
    for name in ("train", "evaluate", "export"):
        assert callable(getattr(unet_tf, name)), name
    assert importlib.import_module("unet_tf.training").train is unet_tf.train


def test_all_names_exist():
    for name in unet_tf.__all__:
        assert hasattr(unet_tf, name), name


def run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_import_config_and_cli_help_stay_light():
    out = run_python(
        "import sys, contextlib, io\n"
        "import unet_tf\n"
        "from unet_tf.config import DataConfig, model_preset\n"
        "from unet_tf.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    for argv in (['--help'], ['train', '--help'], ['export', '--help']):\n"
        "        try:\n"
        "            main(argv)\n"
        "        except SystemExit:\n"
        "            pass\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras', 'numpy') if m in sys.modules)\n"
        "print(heavy)\n"
    )
    assert out.strip() == "[]"
