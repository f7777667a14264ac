"""The example notebook runs top to bottom, headless, and its melodies display as audio + piano roll."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).parents[1] / "examples" / "melody_notebook.ipynb"


def test_example_notebook_runs_headless(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("music21")
    src = str(Path(__file__).parents[1] / "src")
    monkeypatch.setenv("PYTHONPATH", src + os.pathsep + os.environ.get("PYTHONPATH", ""))  # the kernel's import path
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit the notebook without outputs"
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    html = [o["data"]["text/html"] for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if "text/html" in o.get("data", {})]
    assert len(html) == 3 and all("data:image/png;base64," in h for h in html)
    assert all("<audio controls" in h or "no audio" in h for h in html)
    written = {p.name for p in (tmp_path / "out" / "notebook").iterdir()}
    assert {"tune.mid", "tune.musicxml", "tune.abc", "tune.png"} <= written
    assert "K:Dm" in (tmp_path / "out" / "notebook" / "tune.abc").read_text()
