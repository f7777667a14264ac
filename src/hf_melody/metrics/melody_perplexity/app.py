"""The Hugging Face Space of the Melody Perplexity metric (evaluate): `python app.py` serves it locally."""

from pathlib import Path

from hf_melody.metrics.space import metric_app

demo = metric_app(Path(__file__).parent)

if __name__ == "__main__":
    demo.launch()
