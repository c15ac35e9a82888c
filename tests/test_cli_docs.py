"""The CLI's flags come from one table per settings dataclass, and docs/cli.md shows the
parser's own --help. Standard library only: nothing here imports TensorFlow."""

import dataclasses

import pytest

from unet_tf.cli import build_parser
from unet_tf.cli.docs import PAGE, render, subcommands
from unet_tf.cli.flags import (
    AUGMENT_FLAGS,
    DATA_FLAGS,
    EXPORT_FLAGS,
    MODEL_FLAGS,
    THRESHOLD_FLAGS,
    TRAIN_DATA_FLAGS,
    TRAIN_FLAGS,
    config_values,
)
from unet_tf.config import (
    AugmentConfig,
    DataConfig,
    ExportConfig,
    ModelConfig,
    ParityThresholds,
    TrainConfig,
    model_preset,
)

ROWS = (DATA_FLAGS + TRAIN_DATA_FLAGS + MODEL_FLAGS + AUGMENT_FLAGS + TRAIN_FLAGS + EXPORT_FLAGS
        + THRESHOLD_FLAGS)
# fields with no flag of their own (set in Python, derived, or nested settings)
WITHOUT_FLAG = {
    DataConfig: {"augment", "cache", "shuffle_buffer"},
    ModelConfig: {"batch_norm_momentum", "dropout", "input_channels", "kernel_initializer",
                  "num_classes"},
    AugmentConfig: {"brightness", "contrast", "elastic_grid", "flip", "hue", "saturation"},
    TrainConfig: {"seed", "verbose", "weight_decay"},  # --seed is DataConfig's, for both
    ExportConfig: {"thresholds"},
    ParityThresholds: set(),
}


def test_docs_cli_md_is_the_parsers_help():
    page = PAGE.read_text(encoding="utf-8")
    for command in subcommands():
        assert f"<!-- cli:{command} -->" in page, f"docs/cli.md has no block for {command}"
    assert render(page) == page, "docs/cli.md is stale: run python -m unet_tf.cli.docs"


def test_every_field_has_one_flag_or_is_listed_without_one():
    for config, without in WITHOUT_FLAG.items():
        flagged = [row.field for row in ROWS if row.config is config]
        assert len(flagged) == len(set(flagged)), config
        fields = {f.name for f in dataclasses.fields(config)}
        assert set(flagged) | without == fields and not set(flagged) & without, config


def test_no_flags_give_the_config_defaults():
    train = build_parser().parse_args(["train"])
    assert DataConfig(**config_values(train, DATA_FLAGS + TRAIN_DATA_FLAGS)) == DataConfig()
    assert AugmentConfig(**config_values(train, AUGMENT_FLAGS)) == AugmentConfig()
    assert TrainConfig(**config_values(train, TRAIN_FLAGS)) == TrainConfig()
    assert model_preset(train.preset, **config_values(train, MODEL_FLAGS)) == ModelConfig()
    export = build_parser().parse_args(["export", "--model", "m", "--out", "o"])
    thresholds = ParityThresholds(**config_values(export, THRESHOLD_FLAGS))
    assert ExportConfig(**config_values(export, EXPORT_FLAGS), thresholds=thresholds) == (
        ExportConfig())


def test_flags_set_their_fields():
    args = build_parser().parse_args(
        ["train", "--no-download", "--vflip", "--patience", "3", "--no-batch-norm",
         "--output-stride", "1", "--image-size", "64x96", "--scale", "1,2"])
    assert config_values(args, DATA_FLAGS)["download"] is False
    assert config_values(args, TRAIN_DATA_FLAGS)["image_size"] == (64, 96)
    assert config_values(args, AUGMENT_FLAGS)["vertical_flip"] is True
    assert config_values(args, AUGMENT_FLAGS)["scale"] == (1.0, 2.0)
    assert config_values(args, TRAIN_FLAGS)["early_stopping_patience"] == 3
    assert config_values(args, MODEL_FLAGS) == {"batch_norm": False, "output_stride": 1}


@pytest.mark.parametrize("command", ["train", "export"])
def test_help_shows_defaults_as_typed(command, capsys):
    from unet_tf.cli import main

    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    if command == "train":
        assert "(default: 128x128)" in out and "(default: 1.0,1.25)" in out
        assert "(default: f12-os2)" in out
    else:
        # argparse may break the line at a hyphen
        assert "(default:savedmodel,tflite-fp32,tflite-fp16,tflite-int8)" in out.replace(" ", "")
        assert "--min-agreement-fp32" in out and "--max-iou-drop-int8" in out
