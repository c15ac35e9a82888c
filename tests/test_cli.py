import json

import pytest

from unet_tf.cli import main

COMMANDS = ("train", "evaluate", "export", "predict", "blur", "instances", "tune", "models",
            "serve-web")


def test_help_lists_every_subcommand_with_what_it_does(capsys):
    import argparse

    from unet_tf.cli import build_parser

    parser = build_parser()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(sub.choices) == set(COMMANDS)  # a new command is documented here too
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    summaries = {action.dest: action.help for action in sub._choices_actions}
    for command in COMMANDS:
        assert summaries[command] and summaries[command] in " ".join(out.split()), command
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0, command
        assert f"usage: unet-tf {command}" in capsys.readouterr().out, command


def test_train_help_documents_data_specs(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "oxford-pets:DIR" in out and "--image-size" in out and "--epochs" in out


@pytest.mark.slow  # a CLI training run, ~10 s
def test_train_then_evaluate_end_to_end(tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["-q", "train", "--preset", "tiny", "--epochs", "1", "--num-examples", "16",
                 "--image-size", "32", "--batch-size", "8", "--out", str(run)])
    assert code == 0
    out = capsys.readouterr().out
    assert "mean" in out and "pixel accuracy" in out and "model.keras" in out
    assert (run / "model.keras").exists() and (run / "eval" / "report.json").exists()

    code = main(["-q", "evaluate", "--model", str(run), "--data", "synthetic",
                 "--num-examples", "8", "--out", str(tmp_path / "eval")])
    assert code == 0
    out = capsys.readouterr().out
    for name in ("background", "disc", "square", "triangle"):
        assert name in out
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert set(report["per_class_iou"]) == {"background", "disc", "square", "triangle"}
    assert (tmp_path / "eval" / "confusion.png").stat().st_size > 0


@pytest.mark.slow  # a CLI training run, ~10 s
def test_no_batch_norm_trains_the_paper_block(tmp_path, capsys):
    import keras

    run = tmp_path / "run"
    assert main(["-q", "train", "--preset", "tiny", "--no-batch-norm", "--epochs", "1",
                 "--num-examples", "8", "--image-size", "32", "--batch-size", "8",
                 "--out", str(run)]) == 0
    assert json.loads((run / "config.json").read_text())["model"]["batch_norm"] is False
    model = keras.saving.load_model(run / "model.keras", compile=False)
    layers = [type(layer).__name__ for layer in model.layers]
    assert "BatchNormalization" not in layers and "Conv2D" in layers
    assert model.get_layer("enc1_conv1").use_bias


@pytest.mark.slow  # a CLI training run, ~10 s
def test_output_stride_and_jit_compile_flags_reach_the_saved_config(tmp_path):
    run = tmp_path / "run"
    assert main(["-q", "train", "--preset", "tiny", "--output-stride", "2", "--epochs", "1",
                 "--num-examples", "8", "--image-size", "32", "--batch-size", "8",
                 "--jit-compile", "off", "--out", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["output_stride"] == 2
    assert config["train"]["jit_compile"] == "off" and config["jit_compile"] is False


def test_errors_exit_2_with_a_message(tmp_path, capsys):
    assert main(["evaluate", "--model", str(tmp_path / "missing")]) == 2
    assert "error" in capsys.readouterr().err
    assert main(["train", "--data", "folder:" + str(tmp_path / "nope"), "--out",
                 str(tmp_path / "r")]) == 2
    assert "does not exist" in capsys.readouterr().err
