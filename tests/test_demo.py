"""The web demo: its generate action, and the real app (`hf-melody demo`) driven by a headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from hf_melody import ConfigError, HFMelodyError

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
# any connection that is not to this machine fails: starting the demo must not need the network
NO_NETWORK = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "ALL_PROXY": "http://127.0.0.1:9",
              "NO_PROXY": "127.0.0.1,localhost", "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}


def test_demo_generates_audio_piano_roll_and_downloads(tiny_bundle, fixtures_dir, tmp_path):
    pytest.importorskip("gradio")
    from hf_melody.demo import MelodyDemo

    demo = MelodyDemo(models=[str(tiny_bundle)], out_dir=tmp_path)
    audio, png, files, summary = demo.generate(str(tiny_bundle), "G major", "3/4", 4, "german-folk", 0.9, 7)
    assert Path(audio).read_bytes()[:4] == b"RIFF" and Path(png).read_bytes()[:4] == b"\x89PNG"
    suffixes = sorted(Path(f).suffix for f in files)
    assert suffixes[0] == ".mid" and (len(suffixes) == 1 or suffixes[1] == ".musicxml")
    assert "seed 7" in summary and "G major" in summary
    # a MIDI prompt is continued
    *_, summary = demo.generate(str(tiny_bundle), "any", "any", 2, "any", 1.0, 1, str(fixtures_dir / "kinder0_0.mid"))
    assert " 0 from the prompt" not in summary
    with pytest.raises(ConfigError, match="key"):
        demo.generate(str(tiny_bundle), "H major", "any", 2, "any", 1.0, 1)
    # bars of a MIDI prompt are regenerated (infilling), the rest kept
    prompt = fixtures_dir / "kinder0_5.mid"
    _, png, files, summary = demo.generate(str(tiny_bundle), "any", "any", 2, "any", 1.0, 3, str(prompt), "2-3")
    assert "bars 2-3 regenerated" in summary and Path(png).is_file()
    from hf_melody import read_midi

    before, after = read_midi(prompt).notes, read_midi(next(f for f in files if f.endswith(".mid"))).notes
    assert [n for n in after if n[0] >= 3 * 1440] == [n for n in before if n[0] >= 3 * 1440]  # 6/8: bars 4.. kept
    with pytest.raises(HFMelodyError, match="needs a MIDI prompt"):
        demo.generate(str(tiny_bundle), "any", "any", 2, "any", 1.0, 3, None, "2")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"the demo exited with {proc.returncode}: {proc.stdout.read()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"the demo did not answer on {url} within {timeout} s")


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER) and not os.environ.get("HF_MELODY_REQUIRE_BROWSER"),
                    reason="needs Debian's chromium and chromium-driver (make browser)")
def test_demo_in_a_real_browser(tiny_bundle, tmp_path):
    assert CHROMIUM and CHROMEDRIVER, "HF_MELODY_REQUIRE_BROWSER is set but chromium/chromedriver are missing"
    pytest.importorskip("gradio")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, **NO_NETWORK, "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}
    src = str(Path(__file__).parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen([sys.executable, "-m", "hf_melody.cli", "demo", "--models", str(tiny_bundle),
                             "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    driver = None
    try:
        _wait_for(url, proc)
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    "--no-proxy-server"):
            options.add_argument(arg)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        driver.get(url)
        wait = WebDriverWait(driver, 90)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#generate"))
        driver.find_element(By.CSS_SELECTOR, "#generate").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#downloads a[download]"))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#audio a[download$=".wav"]'))
        assert "notes" in driver.find_element(By.CSS_SELECTOR, "#summary").text
        assert driver.find_elements(By.CSS_SELECTOR, "#audio audio")  # the player
        links = {a.get_attribute("download"): a.get_attribute("href")
                 for a in driver.find_elements(By.CSS_SELECTOR, "#downloads a[download]")}
        assert "melody.mid" in links
        with urllib.request.urlopen(links["melody.mid"], timeout=10) as r:
            assert r.read(4) == b"MThd"
        wav = driver.find_element(By.CSS_SELECTOR, '#audio a[download$=".wav"]').get_attribute("href")
        with urllib.request.urlopen(wav, timeout=10) as r:
            assert r.read(4) == b"RIFF"
        roll = driver.find_element(By.CSS_SELECTOR, "#roll img").get_attribute("src")
        assert roll
    finally:
        if driver is not None:
            driver.quit()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_space_app_builds_the_demo_with_the_bundled_models():
    gr = pytest.importorskip("gradio")
    import runpy

    from hf_melody.bundle import bundled_checkpoints

    app = runpy.run_path(str(Path(__file__).parents[1] / "app.py"), run_name="space")
    assert isinstance(app["demo"], gr.Blocks)
    dropdown = next(b for b in app["demo"].blocks.values() if getattr(b, "label", None) == "model")
    assert [c[0] for c in dropdown.choices] == bundled_checkpoints()


def test_cli_lists_the_demo_command(capsys):
    from hf_melody.cli import main

    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    text = capsys.readouterr().out
    assert "--models" in text and "--port" in text and "Gradio" in text
