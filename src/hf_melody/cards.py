"""Model cards rendered from the packaged Jinja template, with numbers from the bundle's own files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TEMPLATE = Path(__file__).parent / "templates" / "model_card.md.j2"


def render_model_card(bundle_dir: str | Path, info: dict[str, Any], results: dict[str, Any] | None = None,
                      name: str | None = None) -> str:
    """The README.md of a bundle: HF metadata, quick start, training facts and (if given) evaluation results.

    `results` is one model's entry of `results.json` written by `hf-melody evaluate` (metric name -> value).
    """
    import jinja2

    bundle_dir = Path(bundle_dir)
    config = json.loads((bundle_dir / "config.json").read_text())
    name = name or bundle_dir.name
    metrics = [{"type": k, "value": round(float(v), 4)} for k, v in (results or {}).items()
               if isinstance(v, int | float)]
    eval_table = ""
    if metrics:
        eval_table = "| metric | value |\n|---|---|\n" + "\n".join(f"| {m['type']} | {m['value']} |" for m in metrics)

    def fmt(x):
        return f"{x:.4f}" if isinstance(x, float) else ("n/a" if x is None else str(x))

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    template = env.from_string(TEMPLATE.read_text())
    return template.render(
        name=name,
        load_name=info.get("load_name", name),
        preset=info.get("preset", config.get("hf_melody_preset", "custom")),
        num_parameters=int(info.get("num_parameters", 0)),
        vocab_size=config["vocab_size"],
        n_positions=config["n_positions"],
        bpe=(bundle_dir / "miditok.json").is_file() and '"_vocab_base_byte_to_token"' in
        (bundle_dir / "miditok.json").read_text() and '"_model"' in (bundle_dir / "miditok.json").read_text(),
        datasets=info.get("dataset", []),
        exclude=info.get("exclude", []),
        data_report=info.get("data_report", "n/a"),
        max_steps=info.get("max_steps", "n/a"),
        train_loss=fmt(info.get("final_train_loss")),
        eval_loss=fmt(info.get("final_eval_loss")),
        command=info.get("command", "n/a"),
        eval_dataset=info.get("eval_dataset", "essen/kinder0"),
        metrics=metrics,
        eval_table=eval_table,
    )
