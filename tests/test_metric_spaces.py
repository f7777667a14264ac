"""Each evaluate module folder is a publishable Space: metadata README, app.py, requirements.txt, full MetricInfo."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import evaluate
import pytest
import yaml

from hf_melody import ConfigError
from hf_melody.metrics import CODEBASE, HOMEPAGE, METRICS, metric_info, metric_path


@pytest.mark.parametrize("name", METRICS)
def test_metric_folder_has_the_files_of_a_space(name):
    folder = Path(metric_path(name))
    text = (folder / "README.md").read_text()
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py" and {"evaluate", "metric"} <= set(meta["tags"])
    assert meta["title"] and meta["description"]
    module = evaluate.load(metric_path(name))
    assert module.citation.strip() and module.citation.strip() in text  # the card cites what the module cites
    assert module.homepage == HOMEPAGE and module.codebase_urls == [CODEBASE]
    assert module.reference_urls and all(u.startswith("https://") for u in module.reference_urls)
    requirements = (folder / "requirements.txt").read_text()
    assert "evaluate" in requirements and "hf_melody" in requirements and "gradio" in requirements


@pytest.mark.parametrize("name", METRICS)
def test_space_app_computes_its_example(name):
    gr = pytest.importorskip("gradio")
    from hf_melody.metrics.space import EXAMPLES, compute, metric_script

    app = runpy.run_path(str(Path(metric_path(name)) / "app.py"), run_name="space")
    assert isinstance(app["demo"], gr.Blocks)
    module = evaluate.load(str(metric_script(metric_path(name))))
    result = compute(module, json.dumps(EXAMPLES[name]))
    assert result and all(v is not None for v in result.values())
    with pytest.raises(ConfigError, match="not valid JSON"):
        compute(module, "{predictions: [")


def test_a_metric_without_citation_is_refused():
    with pytest.raises(ConfigError, match="citation"):
        metric_info("d", " ", "args")
