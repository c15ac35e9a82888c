"""Model presets: named for what they are, the default equal to ``ModelConfig()``, earlier
names refused with the new one. Standard library only: no model is built."""

import re

import pytest

from unet_tf.config import (
    DEFAULT_PRESET,
    MODEL_PRESETS,
    RENAMED_PRESETS,
    ModelConfig,
    model_preset,
)


def test_model_config_defaults_are_the_default_preset():
    assert ModelConfig() == MODEL_PRESETS[DEFAULT_PRESET] == model_preset(DEFAULT_PRESET)
    assert ModelConfig().output_stride == 2


@pytest.mark.parametrize("name", [n for n in MODEL_PRESETS if n.startswith("f")])
def test_preset_names_say_filters_and_output_stride(name):
    match = re.fullmatch(r"f(\d+)(-os2)?", name)
    assert match, name
    config = MODEL_PRESETS[name]
    assert config.base_filters == int(match[1])
    assert config.output_stride == (2 if match[2] else 1)


def test_tiny_and_classic_keep_the_papers_full_resolution_blocks():
    assert MODEL_PRESETS["tiny"].output_stride == MODEL_PRESETS["classic"].output_stride == 1
    assert MODEL_PRESETS["classic"].base_filters == 64 and not MODEL_PRESETS["classic"].batch_norm


@pytest.mark.parametrize(("old", "new"), sorted(RENAMED_PRESETS.items()))
def test_earlier_preset_names_say_what_they_became(old, new, capsys):
    from unet_tf.cli import main

    assert new in MODEL_PRESETS and old not in MODEL_PRESETS
    with pytest.raises(ValueError, match=f"'{old}' was renamed to '{new}'"):
        model_preset(old)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--preset", old])
    assert exit_info.value.code == 2
    assert f"--preset: the preset '{old}' was renamed to '{new}'" in capsys.readouterr().err


def test_unknown_preset_lists_the_names():
    with pytest.raises(ValueError, match=r"Unknown preset 'huge'.*'f12-os2'"):
        model_preset("huge")


def test_a_config_json_round_trip_keeps_the_output_stride():
    for config in MODEL_PRESETS.values():
        assert ModelConfig.from_dict(config.to_dict()) == config
