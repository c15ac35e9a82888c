import json
import os
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from conftest import data_dir
from unet_tf import DataConfig, TrainConfig, evaluate, load_run, model_preset, train
from unet_tf.config import AugmentConfig
from unet_tf.data.class_weights import balanced_class_weights
from unet_tf.training import compile_model

# Trainings whose numbers a test compares run in float32 without XLA on every kind of host:
# "auto" would pick bfloat16 on AVX-512 BF16 CPUs and XLA on long AVX2 runs.
PINNED = {"precision": "float32", "jit_compile": "off"}


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    """A tiny U-Net trained for 1 epoch on 8 synthetic scenes (a few seconds)."""
    out = tmp_path_factory.mktemp("synthetic")
    return train(model_preset("tiny"), DataConfig(num_examples=8, image_size=(32, 32),
                                                  batch_size=8),
                 TrainConfig(epochs=1, verbose=0, **PINNED), out)


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """An untrained tiny U-Net saved as a run directory, as train() writes one (no training:
    the quick loop's stand-in for a trained or shipped model)."""
    from unet_tf import RunInfo, build_unet
    from unet_tf.data import PREPROCESSING

    out = tmp_path_factory.mktemp("saved")
    config = model_preset("tiny")
    build_unet(config).save(out / "model.keras")
    RunInfo(config, ("background", "disc", "square", "triangle"), (32, 32),
            dict(PREPROCESSING), {}).save(out)
    return out


@pytest.fixture(scope="module")
def isbi_run(tmp_path_factory):
    """A tiny U-Net trained for 15 epochs on ISBI 2012 at 128 px (about 15 s on 2 cores)."""
    root = data_dir("isbi2012_em")
    out = tmp_path_factory.mktemp("isbi")
    data = DataConfig(
        spec=f"folder:{root}", class_names=("membrane", "interior"), mask_values=(0, 255),
        image_size=(128, 128), batch_size=4,
        augment=AugmentConfig(vertical_flip=True, rotate90=True),
    )
    train(model_preset("tiny", base_filters=8), data,
          TrainConfig(epochs=15, learning_rate=3e-3, verbose=0, **PINNED), out)
    return out


@pytest.mark.slow
def test_training_on_isbi_learns_membranes(isbi_run):
    report = evaluate(isbi_run)  # the run's own held-out slices
    assert report["examples"] == 4
    # predicting "interior" everywhere scores mean IoU 0.39 (interior is 78% of pixels);
    # 15 epochs of the tiny model reach about 0.67.
    assert report["mean_iou"] > 0.60, report
    assert report["per_class_iou"]["membrane"] > 0.40, report


@pytest.mark.slow
def test_run_directory_has_model_config_history_and_curves(isbi_run):
    names = {p.name for p in isbi_run.iterdir()}
    assert {"model.keras", "config.json", "history.csv", "history.json", "curves.png"} <= names
    config = json.loads((isbi_run / "config.json").read_text())
    assert config["class_names"] == ["membrane", "interior"]
    assert config["input_size"] == [128, 128]
    assert config["input_channels"] == 1
    assert config["preprocessing"]["scale"] == pytest.approx(1 / 255)
    history = json.loads((isbi_run / "history.json").read_text())
    assert len(history["val_mean_iou"]) == 15
    assert config["best_metrics"]["val_mean_iou"] == pytest.approx(max(history["val_mean_iou"]))


def test_fine_tune_a_saved_model_with_plain_model_fit(saved_run):
    model, info = load_run(saved_run)
    assert info.class_names == ("background", "disc", "square", "triangle")
    for layer in model.layers:  # freeze the encoder, fine-tune the decoder
        layer.trainable = not layer.name.startswith("enc")
    compile_model(model, info.class_names, TrainConfig(epochs=1, learning_rate=1e-3, **PINNED),
                  2)
    from unet_tf.data.synthetic import make_arrays

    images, masks = make_arrays(8, seed=5, size=32)  # in memory, scaled as config.json says
    frozen = model.get_layer("enc1_conv1").get_weights()[0].copy()
    tuned = model.get_layer("head_logits").get_weights()[0].copy()
    history = model.fit(images * info.preprocessing["scale"], masks, batch_size=4, epochs=1,
                        verbose=0)
    assert np.isfinite(history.history["loss"][0])
    np.testing.assert_array_equal(frozen, model.get_layer("enc1_conv1").get_weights()[0])
    assert not np.allclose(tuned, model.get_layer("head_logits").get_weights()[0])


@pytest.mark.slow  # two trainings, ~25 s
def test_class_weights_dice_and_seed_make_a_repeatable_run(tmp_path, caplog):
    data = DataConfig(num_examples=16, image_size=(32, 32), batch_size=8)
    cfg = TrainConfig(epochs=2, dice_weight=0.5, class_weights="balanced", verbose=0,
                      **PINNED)
    with caplog.at_level("INFO", logger="unet_tf"):
        a = train(model_preset("tiny"), data, cfg, tmp_path / "a")
    # the speed a user gets: one line per epoch, the median epoch in config.json
    speeds = [r.getMessage() for r in caplog.records if "images/s training" in r.getMessage()]
    assert len(speeds) == 2 and speeds[1].startswith("epoch 2: ")
    saved = json.loads((a / "config.json").read_text())
    # config.json keeps the median of the epochs' rates: images / training seconds, as logged
    logged = [re.search(r": ([\d.]+) images/s training \((\d+) images in ([\d.]+) s",
                        line).groups() for line in speeds]
    assert {int(n) for _, n, _ in logged} == {13}  # 16 scenes less the 3 held out for validation
    rates = [float(rate) for rate, _, _ in logged]  # logged to 0.1 images/s
    for rate, n, sec in logged:  # images / training seconds, within the logged rounding
        low, high = int(n) / (float(sec) + 0.05), int(n) / max(float(sec) - 0.05, 1e-3)
        assert low - 0.05 <= float(rate) <= high + 0.05, (rate, n, sec)
    assert saved["train_images_per_second"] == pytest.approx(np.median(rates), abs=0.06)
    b = train(model_preset("tiny"), data, cfg, tmp_path / "b")
    ha = json.loads((a / "history.json").read_text())
    hb = json.loads((b / "history.json").read_text())
    assert ha["loss"] == pytest.approx(hb["loss"], rel=1e-4)
    weights = json.loads((a / "config.json").read_text())["train"]["class_weights"]
    assert len(weights) == 4 and weights[0] < 1.0  # background is the frequent class


def test_balanced_weights_use_median_frequency():
    w = balanced_class_weights(np.array([0.7, 0.2, 0.1, 0.0]))
    np.testing.assert_allclose(w, [0.2 / 0.7, 1.0, 2.0, 1.0])
    soft = balanced_class_weights(np.array([0.7, 0.2, 0.1, 0.0]), power=0.5)
    np.testing.assert_allclose(soft, [(0.2 / 0.7) ** 0.5, 1.0, 2.0**0.5, 1.0])


def test_unknown_balancing_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="sqrt_balanced"):
        train(model_preset("tiny"), DataConfig(num_examples=8, image_size=(32, 32)),
              TrainConfig(epochs=1, class_weights="median"), tmp_path)


def test_bad_image_size_fails_before_training(tmp_path):
    with pytest.raises(ValueError, match="pad or resize to 112x112"):
        train(model_preset("f16"), DataConfig(image_size=(100, 100)), TrainConfig(), tmp_path)


@pytest.mark.slow  # a subprocess
def test_model_keras_loads_and_fine_tunes_with_plain_keras_in_a_fresh_process(synthetic_run):
    script = textwrap.dedent(f"""
        import sys
        import keras
        import numpy as np
        model = keras.saving.load_model({str(synthetic_run / "model.keras")!r})
        assert model.output_shape == (None, None, None, 4), model.output_shape
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        x = np.random.rand(4, 32, 32, 3).astype("float32")
        y = np.random.randint(0, 4, (4, 32, 32, 1))
        loss = model.fit(x, y, epochs=1, verbose=0).history["loss"][0]
        assert np.isfinite(loss)
        assert not any(name.startswith("unet_tf") for name in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_keras_file_without_its_config_is_refused_with_a_reason(saved_run, tmp_path):
    (tmp_path / "model.keras").write_bytes((saved_run / "model.keras").read_bytes())
    with pytest.raises(ValueError, match="no config.json beside it"):
        load_run(tmp_path / "model.keras")
    (tmp_path / "config.json").write_text((saved_run / "config.json").read_text())
    (tmp_path / "model.keras").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match="exists .* but Keras cannot load it"):
        load_run(tmp_path / "model.keras")


@pytest.fixture(scope="module")
def bfloat16_run(tmp_path_factory):
    """A tiny U-Net trained for 3 epochs with mixed bfloat16, forced whatever the CPU
    (without BF16 instructions TensorFlow emulates it: slower, same promises)."""
    data = DataConfig(num_examples=16, image_size=(32, 32), batch_size=8)
    return train(model_preset("tiny"), data,
                 TrainConfig(epochs=3, learning_rate=3e-3, precision="bfloat16",
                             jit_compile="off", verbose=0),
                 tmp_path_factory.mktemp("bfloat16"))


def test_bfloat16_computes_in_bfloat16_and_keeps_float32_variables_and_logits():
    from unet_tf import build_unet
    from unet_tf.precision import dtype_policy

    with dtype_policy("bfloat16"):
        model = build_unet(model_preset("tiny"))
    assert {w.dtype for w in model.weights} == {"float32"}  # what the optimizer updates
    assert model.get_layer("enc1_conv1").compute_dtype == "bfloat16"
    logits = model(np.zeros((1, 32, 32, 3), "float32"))
    assert logits.dtype == "float32"  # the loss sees float32 logits
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored


@pytest.mark.slow  # a bfloat16 training (emulated without BF16 instructions)
def test_bfloat16_training_learns_and_saves_a_float32_model(bfloat16_run):
    history = json.loads((bfloat16_run / "history.json").read_text())
    assert history["loss"][-1] < history["loss"][0], history["loss"]
    model = keras.saving.load_model(bfloat16_run / "model.keras")
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    assert json.loads((bfloat16_run / "config.json").read_text())["precision"] == "bfloat16"


@pytest.mark.slow  # a SavedModel and a TFLite conversion, ~20 s
def test_a_bfloat16_trained_model_exports_with_its_keras_outputs(bfloat16_run, tmp_path):
    """Export runs the float32 model: the SavedModel and fp32 TFLite give the Keras masks."""
    from _models import scenes

    from unet_tf import ExportConfig, Predictor, export

    out = tmp_path / "export"
    export(bfloat16_run, out, ExportConfig(formats=("savedmodel", "tflite-fp32"),
                                          parity_images=3, representative_images=4))
    keras_predictor = Predictor.from_path(bfloat16_run)
    for image in scenes(3, size=48):
        expected = keras_predictor.predict(image)
        for path in (out / "saved_model", out / "model_fp32.tflite"):
            mask = Predictor.from_path(path).predict(image)
            # float32 all the way: only summation order differs (1e-5 of the pixels at most
            # change class, at near-ties); bfloat16 serving would disagree on ~1%
            assert np.mean(mask == expected) >= 0.999, path.name


@pytest.mark.slow  # two trainings, ~40 s (XLA compiles the train and validation steps)
def test_xla_training_gives_the_losses_of_the_plain_graph(tmp_path):
    data = DataConfig(num_examples=16, image_size=(32, 32), batch_size=8)
    runs = {j: train(model_preset("tiny"), data,
                     TrainConfig(epochs=2, jit_compile=j, precision="float32",
                                 verbose=0), tmp_path / j)
            for j in ("off", "on")}
    history = {j: json.loads((run / "history.json").read_text()) for j, run in runs.items()}
    # the fast path does not change results beyond float rounding (XLA reorders sums)
    for key in ("loss", "val_loss", "val_mean_iou"):
        np.testing.assert_allclose(history["on"][key], history["off"][key], rtol=1e-3,
                                   err_msg=key)
    assert {j: json.loads((run / "config.json").read_text())["jit_compile"]
            for j, run in runs.items()} == {"off": False, "on": True}


def test_compile_model_takes_xla_from_the_train_config_unless_told():
    from unet_tf import build_unet

    model = build_unet(model_preset("tiny"))
    for setting, xla in (("on", True), ("off", False)):  # a fine-tuning user's own compile
        compile_model(model, ("a", "b"), TrainConfig(jit_compile=setting), 2)
        assert model.jit_compile is xla, setting
    compile_model(model, ("a", "b"), TrainConfig(jit_compile="on"), 2, jit_compile=False)
    assert model.jit_compile is False  # what unet_tf.train resolved for its run wins


def test_auto_jit_compile_is_xla_only_where_it_was_measured_faster():
    from unet_tf.xla import MIN_XLA_PIXELS, resolve_jit_compile

    avx2, avx512 = {"fma", "avx2"}, {"fma", "avx2", "avx512f", "avx512_bf16"}
    long_run = 10 * MIN_XLA_PIXELS
    assert resolve_jit_compile("auto", long_run, flags=avx2, gpus=0) is True
    assert resolve_jit_compile("auto", None, flags=avx2, gpus=0) is True  # None: a long run
    assert resolve_jit_compile("auto", long_run, flags=avx512, gpus=0) is False
    assert resolve_jit_compile("auto", long_run, flags={"neon"}, gpus=0) is False  # unmeasured
    # a short run never repays the compilation; tf.distribute keeps Keras' choice (off)
    assert resolve_jit_compile("auto", MIN_XLA_PIXELS // 2, flags=avx2, gpus=0) is False
    assert resolve_jit_compile("auto", long_run, distributed=True, flags=avx2, gpus=0) is False
    assert resolve_jit_compile("auto", long_run, flags=avx2, gpus=1) == "auto"  # Keras: XLA
    assert resolve_jit_compile("on", 1, flags=avx512, gpus=0) is True  # explicit choices stand
    assert resolve_jit_compile("off", long_run, flags=avx2, gpus=0) is False
    with pytest.raises(ValueError, match="auto"):
        resolve_jit_compile("xla")
    with pytest.raises(ValueError, match="jit_compile"):
        TrainConfig(jit_compile=True)


def test_auto_precision_is_bfloat16_only_where_the_hardware_computes_it(tmp_path, monkeypatch):
    from unet_tf import precision

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n")
    assert {"avx2", "avx512_bf16"} <= precision.cpu_flags(str(info))
    assert precision.cpu_flags(str(tmp_path / "missing")) == set()
    for native, expected in ((True, "bfloat16"), (False, "float32")):
        monkeypatch.setattr(precision, "native_bfloat16", lambda native=native: native)
        assert precision.resolve_precision("auto") == expected
    assert precision.resolve_precision("float32") == "float32"  # explicit choices stand
    with pytest.raises(ValueError, match="auto"):
        precision.resolve_precision("float16")


def test_a_onednn_isa_cap_below_bfloat16_makes_auto_float32(monkeypatch):
    import tensorflow as tf

    from unet_tf import precision

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])  # CPU only
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_bf16"})
    for isa, native in (("", True), ("avx512_core_bf16", True), ("ALL", True),
                        ("AVX2", False), ("AVX512_CORE_VNNI", False)):
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa)
        assert precision.native_bfloat16() is native, isa
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "fma"})  # an AVX2-only host
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert precision.native_bfloat16() is False


def test_one_variable_makes_the_automatic_choices_act_as_on_each_kind_of_host(monkeypatch):
    from unet_tf import precision
    from unet_tf.host import CPU_KIND_VARIABLE, cpu_flags, cpu_kind
    from unet_tf.xla import resolve_jit_compile

    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.setattr("tensorflow.config.list_physical_devices", lambda kind=None: [])
    expected = {"avx2": ("float32", True), "avx512": ("float32", False),
                "avx512_bf16": ("bfloat16", False)}
    for kind, (auto_precision, xla) in expected.items():
        monkeypatch.setenv(CPU_KIND_VARIABLE, kind)
        assert cpu_kind() == kind
        assert precision.resolve_precision("auto") == auto_precision, kind
        assert resolve_jit_compile("auto", None, gpus=0) is xla, kind
    monkeypatch.setenv(CPU_KIND_VARIABLE, "avx1024")
    with pytest.raises(ValueError, match="UNET_TF_CPU_KIND='avx1024'.*avx512_bf16"):
        cpu_flags()
