"""What ``unet-tf models`` prints: a short table of the shipped models, or one model in full.

Standard library only. The table keeps one line per model where the terminal allows (the task
in a few words, the licence as its SPDX id); ``unet-tf models NAME`` (:func:`model_details`)
gives the full task and licence sentences.

Examples:
    >>> from unet_tf.models import shipped_models
    >>> print(models_table(shipped_models(), width=100))  # doctest: +SKIP
    name       task          classes  input    dev score          licence       params ...
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence

from unet_tf.models.registry import ShippedModel

TABLE_COLUMNS = ("name", "task", "classes", "input", "dev score", "licence", "params")
_KINDS = (("semantic segmentation of ", ""), ("instance segmentation of ", "instances: "))


def short_task(card: dict) -> str:
    """The card's ``short`` entry, else its task up to the first bracket, comma or semicolon
    ("semantic segmentation of pet photos (pet / ...)" -> "pet photos")."""
    if card.get("short"):
        return str(card["short"])
    task = re.split(r" \(|[;,]", str(card.get("task", "")), maxsplit=1)[0].strip()
    for prefix, kind in _KINDS:
        if task.startswith(prefix):
            return kind + task[len(prefix):]
    return task


def short_licence(card: dict) -> str:
    """The SPDX id (``LicenseRef-`` dropped), else the licence's first words (up to a bracket,
    colon or semicolon)."""
    if card.get("spdx"):
        return str(card["spdx"]).removeprefix("LicenseRef-")
    return re.split(r" \(|[:;]", str(card.get("licence", "")))[0]


def _millions(parameters) -> str:
    return f"{parameters / 1e6:.1f} M" if isinstance(parameters, int) else ""


def table_row(model: ShippedModel) -> dict[str, str]:
    """One model's cells in the short table."""
    summary = model.summary()
    return {
        "name": model.name,
        "task": short_task(model.card),
        "classes": str(len(summary["classes"])),
        "input": "native" if summary["input"] == "native pixel size" else summary["input"],
        "dev score": str(summary["score"]).removesuffix(" (dev)"),
        "licence": short_licence(model.card),
        "params": _millions(model.config.get("num_parameters")),
    }


def models_table(models: Sequence[ShippedModel], width: int = 100) -> str:
    """The shipped models as a table within ``width`` columns; the task column wraps."""
    rows = [table_row(m) for m in models]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in TABLE_COLUMNS}
    others = sum(w + 2 for c, w in widths.items() if c != "task")
    widths["task"] = max(10, min(widths["task"], width - others))
    lines = []
    for row in [dict(zip(TABLE_COLUMNS, TABLE_COLUMNS, strict=True)), *rows]:
        task = textwrap.wrap(row["task"], widths["task"], break_on_hyphens=False,
                             break_long_words=False) or [""]
        for i, part in enumerate(task):
            cells = [part if c == "task" else (row[c] if i == 0 else "") for c in TABLE_COLUMNS]
            lines.append("  ".join(v.ljust(widths[c]) for v, c in zip(
                cells, TABLE_COLUMNS, strict=True)).rstrip())
    return "\n".join(lines)


def model_details(model: ShippedModel, width: int = 100) -> str:
    """Everything ``unet-tf models NAME`` says about one model, wrapped to ``width``."""
    summary = model.summary()
    card = model.card
    licence = str(card.get("licence", ""))
    if card.get("spdx") and card["spdx"] not in licence:
        licence += f" [{card['spdx']}]"
    fields = [
        ("name", model.name),
        ("task", summary["task"]),
        ("classes", ", ".join(summary["classes"])),
        ("input", summary["input"]),
        ("score", summary["score"]),
        ("licence", licence),
        ("params", _millions(model.config.get("num_parameters"))),
        ("folder", summary["path"]),
        ("card", str(model.path / "README.md")),
        ("use", f"--model {model.name}, or unet_tf.load_model({model.name!r})"),
    ]
    indent = " " * 10
    return "\n".join(
        textwrap.fill(str(value), max(width, 40), initial_indent=f"{key + ':':<10}",
                      subsequent_indent=indent, break_on_hyphens=False,
                      break_long_words=False)
        for key, value in fields if value
    )
