"""The web demo: a local Gradio app to generate melodies, compare candidates, listen to them, read their score, see
the piano roll and download the files.

Run `hf-melody demo` (or `python app.py`, which a Gradio Space runs). `service` holds what a request may ask and does
(`MelodyDemo`, `DemoLimits`), `page` the Gradio app on top (`build_demo`, `launch`).

Examples:
    >>> from hf_melody.demo import build_demo
    >>> build_demo(models=["folk-base", "original"]).launch()                            # doctest: +SKIP
"""

from .page import TITLE, build_demo, check_port, launch, launch_options
from .service import Candidate, DemoLimits, DemoOutput, MelodyDemo, visitor_message

__all__ = ["TITLE", "Candidate", "DemoLimits", "DemoOutput", "MelodyDemo", "build_demo", "check_port", "launch",
           "launch_options", "visitor_message"]
