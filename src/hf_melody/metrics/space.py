"""The Gradio app of a metric's Hugging Face Space: JSON arguments in, the metric's result out.

Each metric folder is a Space as evaluate expects one (README.md with metadata, `app.py`, `requirements.txt`,
the metric script); its `app.py` calls `metric_app` on its own folder.

Examples:
    >>> from hf_melody.metrics import metric_path
    >>> metric_app(metric_path("novelty")).launch()                                      # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError

_SCALE = [[i * 480, 480, p] for i, p in enumerate((60, 62, 64, 65, 67, 69, 71, 72))]
EXAMPLES: dict[str, dict[str, Any]] = {
    "melody_bleu": {"predictions": [[1, 2, 3, 4, 5]], "references": [[1, 2, 3, 4, 6]]},
    "melody_perplexity": {"predictions": [_SCALE], "model_id": "folk-base"},
    "music_statistics": {"predictions": [_SCALE]},
    "novelty": {"predictions": [_SCALE], "training_notes": [_SCALE], "min_bars": 1},
}
"""A small valid call of each metric, shown pre-filled in its Space."""


def metric_script(folder: str | os.PathLike) -> Path:
    """The metric script of a Space folder: its one `.py` file other than `app.py`."""
    scripts = [p for p in Path(folder).glob("*.py") if p.name != "app.py"]
    if len(scripts) != 1:
        raise ConfigError(f"{folder}: expected one metric script beside app.py, found {[p.name for p in scripts]}")
    return scripts[0]


def compute(module, arguments: str) -> dict[str, Any]:
    """Run `module.compute(**json.loads(arguments))`; bad JSON is a `ConfigError` naming the problem."""
    try:
        kwargs = json.loads(arguments)
    except json.JSONDecodeError as e:
        raise ConfigError(f"the arguments are not valid JSON ({e}); give an object like "
                          '{"predictions": [...]}') from e
    if not isinstance(kwargs, dict):
        raise ConfigError('the arguments must be a JSON object like {"predictions": [...]}')
    return module.compute(**kwargs)


def metric_app(folder: str | os.PathLike):
    """The `gradio.Blocks` of a metric Space: the metric card, a JSON box of arguments and the result."""
    import evaluate
    import gradio as gr

    script = metric_script(folder)
    module = evaluate.load(str(script))
    card = (Path(folder) / "README.md").read_text().split("---\n", 2)[-1]
    example = EXAMPLES.get(script.stem, {"predictions": []})

    def run(arguments: str) -> dict[str, Any]:
        try:
            return compute(module, arguments)
        except (ConfigError, ValueError, TypeError) as e:
            raise gr.Error(str(e)) from e

    with gr.Blocks(title=script.stem) as demo:
        gr.Markdown(card)
        arguments = gr.Code(json.dumps(example), language="json", label="compute(**arguments)")
        button = gr.Button("Compute", variant="primary")
        result = gr.JSON(label="result")
        button.click(run, arguments, result, api_name="compute")
    return demo
