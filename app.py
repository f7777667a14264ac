"""The hf_melody web demo, as a Gradio Space runs it (`python app.py` locally; `hf-melody demo` does the same).

A Space needs `hf_melody[corpus,demo]` installed (requirements.txt) or this repository's `src/` beside this file.
"""

import sys
from pathlib import Path

try:
    import hf_melody  # noqa: F401
except ImportError:  # a checkout of the repository: use its sources
    sys.path.insert(0, str(Path(__file__).parent / "src"))

from hf_melody.demo import build_demo, launch_options

demo = build_demo()

if __name__ == "__main__":
    demo.launch(**launch_options())  # the upload cap, before Gradio stores a file
