"""What a training run records in its ``config.json``, and the error of a stopped run.

``resume_settings`` are what a resumed run must share with the one it continues;
``run_info`` is the run's :class:`unet_tf.checkpoint.RunInfo` (settings, status, best and
saved epochs over the whole history); ``stop_error`` says what a stopped run kept and what
to do next.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from unet_tf.callbacks import TrainingDiverged, TrainingInterrupted
from unet_tf.checkpoint import MODEL_FILE, RunInfo
from unet_tf.config import DataConfig, ModelConfig, TrainConfig
from unet_tf.data import PREPROCESSING


def resume_settings(model_config: ModelConfig, data_config: DataConfig,
                    val_config: DataConfig | None, train_config: TrainConfig) -> dict:
    """What a resumed run must share with the one it continues (config.json "settings")."""
    return {
        "model": model_config.to_dict(), "data": data_config.to_dict(),
        "validation_data": val_config.to_dict() if val_config else {},
        "train": {k: v for k, v in train_config.to_dict().items()
                  # how, not what: XLA gives the same losses to float rounding
                  if k not in ("verbose", "strategy", "jit_compile", "cluster_timeout")},
    }


def run_info(model, model_config, class_names, data_config, val_config, train_config,
             weights, hist: dict[str, list[float]], status: str, settings: dict) -> RunInfo:
    """The run's config.json: settings, status, and best / saved epochs over the whole
    history (a resumed run's epochs included)."""
    epochs = len(hist.get("loss", []))
    scores = [v if np.isfinite(v) else -np.inf for v in hist.get("val_mean_iou", [])]
    best_epoch = int(np.argmax(scores)) if scores else max(epochs - 1, 0)
    best = {k: vals[best_epoch] for k, vals in hist.items() if len(vals) > best_epoch}
    last = {k: vals[-1] for k, vals in hist.items() if vals}
    keep_best = train_config.checkpoint == "best"
    return RunInfo(
        model=model_config,
        class_names=tuple(class_names),
        input_size=tuple(data_config.image_size),
        # "native": trained on crops at the images' own pixel size; served without resizing
        preprocessing={**PREPROCESSING,
                       "resolution": getattr(data_config, "resolution", "resize")},
        extra={
            # running (or killed), interrupted (Ctrl-C), diverged (NaN) or finished
            "status": status,
            "epochs_done": epochs,
            "data": data_config.to_dict(),
            "validation_data": val_config.to_dict() if val_config else None,
            "train": {**train_config.to_dict(), "class_weights": weights},
            "best_epoch": best_epoch + 1 if epochs else 0,
            "saved_epoch": (best_epoch + 1 if keep_best else epochs) if epochs else 0,
            "best_metrics": best,
            # the metrics of the epoch in model.keras (the last one with checkpoint="last")
            "saved_metrics": best if keep_best else last,
            "num_parameters": int(model.count_params()),
            "settings": settings,  # a resumed run must be trained with the same ones
        },
    )


def stop_error(exc: BaseException, state: str, out: Path, info: RunInfo) -> BaseException:
    """The one-line error of a stopped run: what happened, what was kept, what to do."""
    done, saved = info.extra["epochs_done"], info.extra["saved_epoch"]
    kept = (f"{out} keeps {done} finished epoch{'s' if done != 1 else ''} "
            f"({MODEL_FILE}: epoch {saved})" if done else f"no epoch finished, so {out} "
            f"holds no {MODEL_FILE}")
    if state == "diverged":
        return TrainingDiverged(f"{exc}; {kept}. Train again into another --out (or delete "
                                f"{out}); nothing was saved from the diverged epoch")
    text = str(exc) if isinstance(exc, TrainingInterrupted) and str(exc) else "interrupted"
    return TrainingInterrupted(f"training {text}; {kept}; run the same command again to "
                               "resume")
