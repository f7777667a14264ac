"""Model cards rendered from the packaged Jinja template, with numbers from the bundle's own files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .bundle import CHECKPOINTS_DIR, TRAINING_INFO, bundled_checkpoints
from .music import note_name, tokenizer_pitch_range
from .tokenizer import MelodyTokenizer
from .utils import atomic_write_text

TEMPLATE = Path(__file__).parent / "templates" / "model_card.md.j2"
CARD_METRICS = ("bits_per_note", "pitch_bits_per_note", "fair_pitch_bits_per_note", "token_perplexity",
                "token_accuracy")
"""The `results.json` entries a card reports (model-index metrics and the evaluation table)."""
FAIR_PITCH_NOTE = (
    "\n\n`pitch_bits_per_note` scores each Pitch token after the note's own Position/Rest/Bar tokens, so the "
    "model already knows when the note starts; `fair_pitch_bits_per_note` predicts the pitch from the past only "
    "(those onset tokens marginalised), as IDyOM and n-gram pitch models do: compare with them on this one."
)


def render_model_card(bundle_dir: str | Path, info: dict[str, Any], results: dict[str, Any] | None = None,
                      name: str | None = None) -> str:
    """The README.md of a bundle: HF metadata, quick start, training facts and (if given) evaluation results.

    `results` is one model's entry of `results.json` written by `hf-melody evaluate` (metric name -> value).
    """
    import jinja2

    bundle_dir = Path(bundle_dir)
    config = json.loads((bundle_dir / "config.json").read_text())
    name = name or bundle_dir.name
    metrics = [{"type": k, "value": round(float(results[k]), 4)} for k in CARD_METRICS
               if isinstance((results or {}).get(k), int | float)]
    eval_table = ""
    if metrics:
        eval_table = "| metric | value |\n|---|---|\n" + "\n".join(f"| {m['type']} | {m['value']} |" for m in metrics)
        if any(m["type"] == "fair_pitch_bits_per_note" for m in metrics):
            eval_table += FAIR_PITCH_NOTE

    def fmt(x):
        return f"{x:.4f}" if isinstance(x, float) else ("n/a" if x is None else str(x))

    tokenizer = MelodyTokenizer.from_pretrained(bundle_dir)
    pitch_range = tokenizer_pitch_range(tokenizer)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    template = env.from_string(TEMPLATE.read_text())
    return template.render(
        name=name,
        load_name=info.get("load_name", name),
        preset=info.get("preset", config.get("hf_melody_preset", "custom")),
        num_parameters=int(info.get("num_parameters", 0)),
        vocab_size=config["vocab_size"],
        n_positions=config["n_positions"],
        bpe=tokenizer.is_bpe,
        pitch_range=pitch_range,
        pitch_range_names=f"{note_name(pitch_range[0])}–{note_name(pitch_range[1])}",
        datasets=info.get("dataset", []),
        exclude=info.get("exclude", []),
        data_report=info.get("data_report", "n/a"),
        max_steps=info.get("max_steps", "n/a"),
        schedule=(info.get("schedule") or {}).get("summary", ""),
        outcome=(info.get("outcome") or {}).get("summary", ""),
        train_loss=fmt(info.get("final_train_loss")),
        eval_loss=fmt(info.get("final_eval_loss")),
        command=info.get("command", "n/a"),
        eval_dataset=info.get("eval_dataset", "n/a"),
        metrics=metrics,
        eval_table=eval_table,
    )


def generate_model_cards(results_path: str | Path, out_dir: str | Path = "model_cards",
                         names: list[str] | None = None) -> list[Path]:
    """Render the card of every bundled checkpoint from its `training_info.json` and an evaluation `results.json`.

    Writes `out_dir/<name>.md` and the same text as the bundle's own `README.md`, so the numbers of the cards
    always come from `results.json` (written by `hf-melody evaluate`).

    Examples:
        >>> generate_model_cards("model_cards/eval/results.json")        # doctest: +SKIP
    """
    results = json.loads(Path(results_path).read_text())
    written = []
    for name in names or bundled_checkpoints():
        bundle = CHECKPOINTS_DIR / name
        info = json.loads((bundle / TRAINING_INFO).read_text())
        info = {**info, "load_name": name, "eval_dataset": f"{results.get('dataset')} ({results.get('split')})"}
        text = render_model_card(bundle, info, results["models"].get(name), name=f"hf_melody {name}")
        written.append(atomic_write_text(Path(out_dir) / f"{name}.md", text))
        atomic_write_text(bundle / "README.md", text)
    return written
