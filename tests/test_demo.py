"""The web demo: its generate action, and the real app (`hf-melody demo`) driven by a headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from symusic import Score

from hf_melody import ConfigError, HFMelodyError

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
# any connection that is not to this machine fails: starting the demo must not need the network
NO_NETWORK = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "ALL_PROXY": "http://127.0.0.1:9",
              "NO_PROXY": "127.0.0.1,localhost", "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}


def test_demo_generates_candidates_with_audio_score_piano_roll_and_downloads(tiny_bundle, fixtures_dir, tmp_path):
    pytest.importorskip("gradio")
    from hf_melody.demo import MelodyDemo

    demo = MelodyDemo(models=[str(tiny_bundle)], out_dir=tmp_path)
    out = demo.generate(str(tiny_bundle), "G major", "3/4", 4, "german-folk", 0.9, 7, tempo=96, instrument="flute",
                        candidates=2)
    assert len(out.candidates) == 2
    first = out.candidates[0]
    assert Path(first.audio).read_bytes()[:4] == b"RIFF" and Path(first.roll).read_bytes()[:4] == b"\x89PNG"
    suffixes = sorted(Path(f).suffix for f in first.files)
    assert suffixes[0] == ".abc" or suffixes == [".mid", ".wav"]
    assert {".mid", ".wav"} <= set(suffixes)
    if first.score:  # verovio: the engraved notes
        assert Path(first.score).read_text().startswith("<svg") and 'class="note"' in Path(first.score).read_text()
    assert "seed 7" in out.summary and "seed 8" in out.summary and "G major" in out.summary
    assert "96 qpm" in out.summary and "flute" in out.summary
    from symusic import Score

    from hf_melody import read_midi

    midi = Score(next(f for f in first.files if f.endswith(".mid")))
    assert round(midi.tempos[0].qpm) == 96 and midi.tracks[0].program == 73
    # a MIDI prompt is continued
    out = demo.generate(str(tiny_bundle), "any", "any", 2, "any", 1.0, 1, str(fixtures_dir / "kinder0_0.mid"))
    assert " 0 from the prompt" not in out.summary
    with pytest.raises(ConfigError, match="key"):
        demo.generate(str(tiny_bundle), "H major", "any", 2, "any", 1.0, 1)
    # bars of a MIDI prompt are regenerated (infilling), the rest kept
    prompt = fixtures_dir / "kinder0_5.mid"
    out = demo.generate(str(tiny_bundle), "any", "any", 2, "any", 1.0, 3, str(prompt), "2-3")
    [candidate] = out.candidates
    assert "bars 2-3 regenerated" in out.summary and Path(candidate.roll).is_file()
    before = read_midi(prompt).notes
    after = read_midi(next(f for f in candidate.files if f.endswith(".mid"))).notes
    assert [n for n in after if n[0] >= 3 * 1440] == [n for n in before if n[0] >= 3 * 1440]  # 6/8: bars 4.. kept
    # the regenerated melody takes the tempo and instrument too
    out = demo.generate(str(tiny_bundle), "any", "any", 2, "any", 1.0, 3, str(prompt), "2-3", tempo=80,
                        instrument="violin")
    midi = Score(next(f for f in out.candidates[0].files if f.endswith(".mid")))
    assert round(midi.tempos[0].qpm) == 80 and midi.tracks[0].program == 40
    with pytest.raises(HFMelodyError, match="needs a MIDI prompt"):
        demo.generate(str(tiny_bundle), "any", "any", 2, "any", 1.0, 3, None, "2")


@pytest.mark.parametrize("bad, message", [
    ({"candidates": 5}, "candidates 5: out of range; give a whole number from 1 to 4"),
    ({"candidates": 0}, "candidates 0"),
    ({"tempo": 20}, "tempo (qpm) 20: out of range; give a number from 30 to 300"),
    ({"tempo": float("nan")}, "tempo (qpm) nan"),
    ({"instrument": "/etc/passwd"}, "instrument 'passwd': not offered here; choose one of piano, flute"),
    ({"chord_strictness": "medium"}, "choose one of hard, soft"),
    ({"chords": "C H7"}, "unknown chord 'H7'"),
    ({"chords": "C " * 150}, "over 200 characters"),
], ids=["candidates-5", "candidates-0", "tempo-20", "tempo-nan", "instrument-path", "strictness", "chord", "long"])
def test_demo_checks_the_new_inputs(tiny_bundle, tmp_path, bad, message):
    pytest.importorskip("gradio")
    from hf_melody.demo import MelodyDemo

    demo = MelodyDemo(models=[str(tiny_bundle)], out_dir=tmp_path)
    with pytest.raises(ConfigError) as e:
        demo.generate(str(tiny_bundle), bars=1, **bad)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_demo_time_limit_stops_the_generation(tiny_bundle, tmp_path):
    pytest.importorskip("gradio")
    from hf_melody.demo import DemoLimits, MelodyDemo

    with pytest.raises(ConfigError, match="max_seconds"):
        DemoLimits(max_seconds=0)
    demo = MelodyDemo(models=[str(tiny_bundle)], out_dir=tmp_path, limits=DemoLimits(max_seconds=0.001))
    with pytest.raises(HFMelodyError, match=r"^the generation took over 0.001 s, this demo's limit per request; "):
        demo.generate(str(tiny_bundle), bars=32, candidates=4, seed=0)
    assert not list(tmp_path.glob("run*"))  # nothing written


def test_piano_roll_counts_the_bars_asked_for(tmp_path):
    from conftest import make_score
    from hf_melody.export.render import piano_roll_png

    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    eight = make_score([("m", 0, False, [(b * 1920, 1920, 60 + b) for b in range(8)])])  # ends on a bar line
    titles = []
    original = plt.Axes.set_title
    plt.Axes.set_title = lambda ax, text, **kw: titles.append((text, ax.get_xlim())) or original(ax, text, **kw)
    try:
        piano_roll_png(eight, "t", {"num_bars": 8})
    finally:
        plt.Axes.set_title = original
    [(title, xlim)] = titles
    assert "8 notes, 8 bars" in title and xlim == (0.0, 8.0), (title, xlim)


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
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#examples tbody tr"))
        driver.find_element(By.CSS_SELECTOR, "#examples tbody tr td").click()  # D minor, 3/4, violin, 2 candidates
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#candidates input[type=number]")
                   .get_attribute("value") == "2")
        driver.find_element(By.CSS_SELECTOR, "#generate").click()
        for i in (1, 2):  # both candidates: downloads, player, engraved score, piano roll
            wait.until(lambda d, i=i: d.find_elements(By.CSS_SELECTOR, f"#downloads-{i} a[download]"))
            wait.until(lambda d, i=i: d.find_elements(By.CSS_SELECTOR, f'#audio-{i} a[download$=".wav"]'))
            wait.until(lambda d, i=i: d.find_elements(By.CSS_SELECTOR, f"#score-{i} img"))
        assert not [e for e in driver.find_elements(By.CSS_SELECTOR, "#audio-3, #score-3") if e.is_displayed()]
        summary = driver.find_element(By.CSS_SELECTOR, "#summary").text
        assert "notes" in summary and "key D minor" in summary and "violin" in summary and "96 qpm" in summary
        assert driver.find_elements(By.CSS_SELECTOR, "#audio-1 audio")  # the player
        links = {a.get_attribute("download"): a.get_attribute("href")
                 for a in driver.find_elements(By.CSS_SELECTOR, "#downloads-1 a[download]")}
        assert {"melody_1.mid", "melody_1.musicxml", "melody_1.abc", "melody_1.wav"} <= set(links), links
        with urllib.request.urlopen(links["melody_1.mid"], timeout=10) as r:
            assert r.read(4) == b"MThd"
        with urllib.request.urlopen(links["melody_1.abc"], timeout=10) as r:
            abc = r.read().decode()
            assert "K:Dm" in abc and "M:3/4" in abc and "Q:1/4=96" in abc
        wav = driver.find_element(By.CSS_SELECTOR, '#audio-1 a[download$=".wav"]').get_attribute("href")
        with urllib.request.urlopen(wav, timeout=10) as r:
            assert r.read(4) == b"RIFF"
        score = driver.find_element(By.CSS_SELECTOR, "#score-1 img")
        svg = urllib.parse.unquote(score.get_attribute("src"))
        assert svg.startswith("data:image/svg+xml,") and 'class="note"' in svg  # verovio's engraved notes
        assert score.size["width"] > 100 and score.size["height"] > 30
        assert driver.find_element(By.CSS_SELECTOR, "#roll-1 img").get_attribute("src")
        seed = driver.find_element(By.CSS_SELECTOR, "#seed input")
        before = seed.get_attribute("value")
        driver.find_element(By.CSS_SELECTOR, "#new-seed").click()  # a fresh random seed in the box
        wait.until(lambda d: seed.get_attribute("value") not in (before, ""))
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


# ---- issue 27: nothing unbounded, nothing shared by accident ----------------------------------------------------
SERVER_LIMITS = ["--max-upload-bytes", "60000", "--max-prompt-notes", "300", "--max-bars", "16", "--queue-size", "2",
                 "--keep-runs", "4", "--keep-seconds", "2"]


def _midi(path: Path, notes: int) -> Path:
    from symusic import Note, Score, Track

    score = Score(480)
    track = Track("melody")
    for i in range(notes):
        track.notes.append(Note(i * 240, 240, 60 + i % 12, 80))
    score.tracks.append(track)
    score.dump_midi(str(path))
    return path


@contextmanager
def _serve(args: list[str], tmp_path: Path):
    """`hf-melody demo ARGS` on a free port of 127.0.0.1, its temp folders under `tmp_path`; yields (url, proc)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env = {**os.environ, **NO_NETWORK, "GRADIO_TEMP_DIR": str(tmp_path / "gradio"), "TMPDIR": str(tmp_path / "tmp")}
    src = str(Path(__file__).parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen([sys.executable, "-m", "hf_melody.cli", "demo", *args, "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for(url, proc)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def bounded_server(tiny_bundle, tmp_path_factory):
    pytest.importorskip("gradio")
    pytest.importorskip("gradio_client")
    tmp = tmp_path_factory.mktemp("bounded_demo")
    with _serve(["--models", str(tiny_bundle), *SERVER_LIMITS], tmp) as (url, _):
        yield url, tmp


def _client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False)


def _ask(client, model="tiny_bundle0", bars=1, seed=0, prompt=None, regenerate="", temperature=1.0):
    """One request through Gradio's API; returns (summary or None, error message or None, seconds)."""
    from gradio_client import handle_file

    start = time.monotonic()
    try:
        out = client.predict(model, "any", "any", bars, "any", temperature, seed,
                             handle_file(str(prompt)) if prompt else None, regenerate, api_name="/generate")
        return out[0], None, time.monotonic() - start
    except Exception as e:  # gradio_client's AppError carries the message shown to the visitor
        return None, str(e), time.monotonic() - start


def _raw_call(url: str, data: str) -> str:
    """POST `data` (JSON text, NaN allowed) to the /generate API with plain HTTP; the text of the result stream."""
    request = urllib.request.Request(f"{url}gradio_api/call/generate", data=f'{{"data": {data}}}'.encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as r:
        event = json.loads(r.read())["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/generate/{event}", timeout=60) as r:
        return r.read().decode()


def test_server_model_box_is_an_allow_list(bounded_server, tiny_bundle):
    url, _ = bounded_server
    client = _client(url)
    summary, error, _ = _ask(client)
    assert error is None and "notes" in summary
    for visitor_value in ("/etc", str(tiny_bundle) + "/", "folk-base", "someone/some-repo"):
        summary, error, _ = _ask(client, model=visitor_value)
        assert summary is None and "tiny_bundle0" in error and "not in the list of choices" in error, error
        assert "config.json" not in error


def test_server_upload_limits_answer_at_once(bounded_server, tmp_path):
    url, _ = bounded_server
    client = _client(url)
    big = _midi(tmp_path / "big.mid", 20_000)  # over 60,000 bytes
    assert big.stat().st_size > 60_000
    _, error, seconds = _ask(client, prompt=big)  # gradio_client reads the cap from the server's config
    assert "exceeds the maximum file size of 60000 bytes" in error, (error, seconds)
    import httpx  # a client that does not look: the server refuses the upload before storing it

    with big.open("rb") as f:
        r = httpx.post(f"{url}gradio_api/upload", files={"files": ("big.mid", f, "audio/midi")}, timeout=30)
    assert r.status_code == 413, (r.status_code, r.text[:200])
    many = _midi(tmp_path / "many.mid", 1_000)  # under the byte cap, over 300 notes
    assert many.stat().st_size < 60_000
    _, error, seconds = _ask(client, prompt=many)
    assert "many.mid: 1,000 notes, over the 300" in error, (error, seconds)
    ok = _midi(tmp_path / "ok.mid", 24)
    summary, error, _ = _ask(client, prompt=ok)
    assert error is None and "from the prompt" in summary


def test_server_errors_have_no_server_paths_and_seeds_are_checked(bounded_server, tmp_path):
    url, tmp = bounded_server
    client = _client(url)
    fake = tmp_path / "notes.mid"
    fake.write_bytes(b"not a midi file at all")
    _, error, _ = _ask(client, prompt=fake)
    assert "notes.mid: not a MIDI file" in error
    assert str(tmp) not in error and "/tmp" not in error and "gradio/" not in error
    for seed in ("NaN", "Infinity", "-Infinity", "-1", "1099511627776", "1.5"):  # JSON as a raw client sends it
        error = _raw_call(url, f'["tiny_bundle0", "any", "any", 1, "any", 1.0, {seed}, null, "", 120, "piano", "", '
                                    '"hard", 1]')
        assert "seed" in error and "whole number" in error, (seed, error)
    _, error, _ = _ask(client, bars=1000)
    assert error and "1000" in error  # over the slider's end (16): refused, not generated
    _, error, _ = _ask(client, regenerate="2")
    assert "needs a MIDI prompt" in error


def test_server_outputs_stay_bounded_over_20_requests(bounded_server):
    url, tmp = bounded_server
    client = _client(url)
    [out_dir] = (tmp / "tmp").glob("hf_melody-demo-*")
    most = 0
    for seed in range(20):
        summary, error, _ = _ask(client, seed=100 + seed)
        assert error is None, error
        most = max(most, len(list(out_dir.glob("run*"))))
    assert most <= 4, most  # --keep-runs 4
    assert len(list(out_dir.rglob("*"))) <= 4 * (1 + 6)  # 4 folders of at most 6 files (mid, wav, png, musicxml,
    # abc, svg) for the one candidate asked
    # Gradio's own copies go by age through its delete_cache scheduler (--keep-seconds 2), whose timing Gradio does
    # not guarantee (cleaned within 45 s in most runs here, twice not): not asserted; the demo's own folder above is
    # bounded by the demo itself, deterministically


def test_server_queue_is_bounded(bounded_server):
    url, _ = bounded_server
    results = []

    def one(seed):
        results.append(_ask(_client(url), bars=16, seed=seed))

    threads = [threading.Thread(target=one, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert len(results) == 8
    refused = [e for _, e, _ in results if e]
    assert any(s for s, _, _ in results)
    assert refused and all("queue" in e.lower() for e in refused), refused


def test_demo_model_cache_is_an_lru_of_allowed_names(tmp_path):
    pytest.importorskip("gradio")
    from hf_melody.demo import DemoLimits, MelodyDemo

    demo = MelodyDemo(models=["folk-base", "original", "deeper-thinner"], out_dir=tmp_path,
                      limits=DemoLimits(cache_size=2))
    for bad in ("/etc", "folk-base/", "folk-base//", str(Path("src/hf_melody/checkpoints/folk-base").resolve())):
        with pytest.raises(ConfigError, match="not offered here; choose one of folk-base, original, deeper-thinner"):
            demo.generate(bad, bars=1)
    assert demo.loaded() == []
    for name in ("folk-base", "original", "folk-base", "deeper-thinner"):
        demo.pipeline(name)
    assert demo.loaded() == ["folk-base", "deeper-thinner"]
    with pytest.raises(ConfigError, match="bars 33"):
        demo.generate("folk-base", bars=33)
    # the size cap is read from the file system: a file over it is never read
    small = MelodyDemo(models=["folk-base"], out_dir=tmp_path, limits=DemoLimits(max_upload_bytes=1000))
    big = _midi(tmp_path / "big.mid", 2_000)
    with pytest.raises(HFMelodyError, match=r"^big.mid: [\d,]+ bytes, over the 1,000 the demo accepts"):
        small.generate("folk-base", bars=1, prompt=str(big))
    assert small.loaded() == []


def test_cli_demo_port_errors_are_one_line(capsys):
    from hf_melody.cli import main

    assert main(["demo", "--port", "70000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "70000" in err and "1 to 65535" in err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["demo", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"port {port}" in err and "not free" in err


def test_server_api_optional_inputs_candidates_and_chords(bounded_server):
    url, _ = bounded_server
    client = _client(url)
    # only the model and a few settings: the prompt, the bars to regenerate and the rest are optional
    out = client.predict(model="tiny_bundle0", bars=2, seed=5, api_name="/generate")
    assert "seed 5" in out[0] and "120 qpm" in out[0] and "piano" in out[0]
    out = client.predict("tiny_bundle0", "any", "any", 1, "any", 1.0, 3, api_name="/generate")
    assert "seed 3" in out[0]
    out = client.predict(model="tiny_bundle0", bars=2, seed=1, candidates=4, tempo=80, instrument="clarinet",
                         chords="C G Am F", chord_strictness="soft", api_name="/generate")
    assert [f"seed {s}" in out[0] for s in (1, 2, 3, 4)] == [True] * 4 and "chords C G Am F" in out[0]
    assert len(out) == 1 + 4 * 4
    # over chords the files carry them: the MIDI's second track is the block chords, with a marker per chord
    files = [f["path"] if isinstance(f, dict) else f for f in out[4]["value"]]  # a gr.update of the file list
    midi = Score(next(f for f in files if str(f).endswith(".mid")))
    assert [t.name for t in midi.tracks][1:] == ["Chords"]
    assert [m.text for m in midi.markers] == ["C", "G"]  # 2 bars asked: the first two chords
    _, error, _ = _ask(client)
    assert error is None
    try:
        client.predict(model="tiny_bundle0", bars=2, chords="C H7 F", api_name="/generate")
        raise AssertionError("an unknown chord was accepted")
    except Exception as e:
        message = str(e)
    assert "unknown chord 'H7'" in message and "\n" not in message.strip(), message
    for bad in ({"candidates": 9}, {"tempo": 1000}, {"instrument": "kazoo"}):
        try:
            client.predict(model="tiny_bundle0", bars=1, api_name="/generate", **bad)
            raise AssertionError(f"{bad} was accepted")
        except Exception as e:
            assert "AssertionError" not in type(e).__name__, e


def test_server_time_limit_answers_with_one_line(tiny_bundle, tmp_path):
    pytest.importorskip("gradio_client")
    with _serve(["--models", str(tiny_bundle), "--max-seconds", "0.001"], tmp_path) as (url, _):
        client = _client(url)
        try:
            client.predict(model="tiny_bundle0", bars=32, candidates=4, seed=0, api_name="/generate")
            raise AssertionError("no time limit")
        except Exception as e:
            message = str(e)
        assert "the generation took over 0.001 s, this demo's limit per request" in message, message
        # the server is free again at once: the next request is answered (and stopped) too
        _, error, _ = _ask(client, bars=1)
        assert error and "limit per request" in error
