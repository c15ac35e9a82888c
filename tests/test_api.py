import importlib

import unet_tf


def test_public_functions_are_not_shadowed_by_their_modules():
    # train, evaluate and export are functions and modules of the same name
    for name in ("train", "evaluate", "export"):
        importlib.import_module(f"unet_tf.{name}")
        assert callable(getattr(unet_tf, name)), name
        assert getattr(unet_tf, name).__module__ == f"unet_tf.{name}"


def test_all_names_exist():
    for name in unet_tf.__all__:
        assert hasattr(unet_tf, name), name
