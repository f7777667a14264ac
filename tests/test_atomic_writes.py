"""Atomic writes: `save_bundle` killed with SIGKILL at every step of its write sequence leaves the old bundle
or the new one, never a mix; a re-save or a file write that fails (disk full, file-size limit) keeps the old files
and leaves no temporary behind."""

from __future__ import annotations

import json
import os
import resource
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import gpt2_bundle, probe_registry

BUNDLE_FILES = ("README.md", "config.json", "generation_config.json", "miditok.json", "model.safetensors",
                "training_info.json")


RUNNER = r'''
import builtins, json, os, shutil, signal, sys
from pathlib import Path

import transformers.modeling_utils as modeling_utils

import hf_melody.utils as utils
from hf_melody import MelodyTokenizer, build_model, save_bundle

root, exchange = Path(sys.argv[1]), sys.argv[2] == "exchange"
if not exchange:
    utils._exchange = lambda a, b: False  # the two-rename fallback of file systems without RENAME_EXCHANGE
tok = MelodyTokenizer()
old_model, new_model = (build_model("original", tok, n_positions=32, seed=s) for s in (0, 1))
info = {"preset": "original", "dataset": ["probe"], "num_parameters": 1}
save_bundle(old_model, tok, root / "old" / "bundle", training_info={**info, "version": "old"})
save_bundle(new_model, tok, root / "new" / "bundle", training_info={**info, "version": "new"})

step = {"n": 0, "kill_at": None}


def tick():
    step["n"] += 1
    if step["n"] == step["kill_at"]:
        os.kill(os.getpid(), signal.SIGKILL)


def after(f):
    def wrapped(*args, **kwargs):
        result = f(*args, **kwargs)
        tick()
        return result
    return wrapped


def before(f):
    def wrapped(*args, **kwargs):
        tick()
        return f(*args, **kwargs)
    return wrapped


real_open, real_save = builtins.open, modeling_utils.safe_save_file


def open_for_write(file, mode="r", *args, **kwargs):
    handle = real_open(file, mode, *args, **kwargs)
    if any(c in mode for c in "wax+"):
        tick()  # the file now exists, empty
    return handle


def save_weights(tensors, filename, metadata=None):
    tick()
    real_save(tensors, filename, metadata=metadata)
    with real_open(filename, "r+b") as f:  # what a kill halfway through the write leaves
        data = f.read()
        f.seek(0)
        f.truncate(len(data) // 2)
        f.write(data[:len(data) // 2])
    tick()
    with real_open(filename, "wb") as f:
        f.write(data)


builtins.open = open_for_write
modeling_utils.safe_save_file = save_weights
os.replace, os.rename, os.link = before(os.replace), before(os.rename), before(os.link)
utils._exchange = before(utils._exchange)
shutil.rmtree = before(shutil.rmtree)

statuses = []
for k in range(1, 200):
    trial = root / f"trial_{k:03d}"
    trial.mkdir()
    shutil.copytree(root / "old" / "bundle", trial / "bundle")
    (trial / "bundle" / "checkpoint-1").mkdir()
    (trial / "bundle" / "checkpoint-1" / "trainer_state.json").write_text("{}")
    pid = os.fork()
    if pid == 0:
        step["n"], step["kill_at"] = 0, k
        save_bundle(new_model, tok, trial / "bundle", training_info={**info, "version": "new"})
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    statuses.append([k, os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL])
    if not statuses[-1][1]:  # the save finished before the k-th step: every step has been tried
        break
builtins.open = real_open
print(json.dumps(statuses))
'''


def bundle_bytes(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in BUNDLE_FILES if (folder / name).is_file()}


@pytest.fixture(scope="module", params=["exchange", "two-renames"])
def killed_saves(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"kill_{request.param}")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(root), request.param], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return request.param, root, json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_kill_at_any_step_leaves_the_old_or_the_new_bundle(killed_saves):
    from hf_melody import load_model, load_tokenizer
    from hf_melody.utils import remove_stale_siblings

    mode, root, statuses = killed_saves
    old, new = bundle_bytes(root / "old" / "bundle"), bundle_bytes(root / "new" / "bundle")
    assert set(old) == set(new) == set(BUNDLE_FILES) and old != new
    killed = [k for k, was_killed in statuses if was_killed]
    assert len(killed) >= 8 and statuses[-1][1] is False, statuses  # several kill points, then a clean finish
    seen = {"old": 0, "new": 0}
    for k, _ in statuses:
        trial = root / f"trial_{k:03d}"
        bundle = trial / "bundle"
        if not bundle.exists():  # only the fallback has a moment between its two renames
            assert mode == "two-renames", f"kill point {k}: the bundle folder is gone"
            remove_stale_siblings(bundle)  # what the next save (or load) does first
        found = bundle_bytes(bundle)
        assert found in (old, new), f"kill point {k}: a mix of the old and new bundle: " + ", ".join(
            f"{n}={'old' if found.get(n) == old[n] else 'new' if found.get(n) == new[n] else 'other'}"
            for n in BUNDLE_FILES)
        seen["old" if found == old else "new"] += 1
        assert (bundle / "checkpoint-1" / "trainer_state.json").is_file(), f"kill point {k}: checkpoint lost"
        load_model(bundle), load_tokenizer(bundle)
        # whatever a kill left beside the bundle is cleaned up before the next save
        remove_stale_siblings(bundle)
        assert sorted(p.name for p in trial.iterdir()) == ["bundle"], f"kill point {k}: {list(trial.iterdir())}"
    assert seen["old"] > 0 and seen["new"] > 0, seen


def test_stale_partial_folders_of_live_processes_are_left_alone(tmp_path):
    from hf_melody.utils import remove_stale_siblings, staging_folder

    mine = staging_folder(tmp_path / "bundle")  # this (live) process is writing it
    dead = tmp_path / ".bundle.999999999.x.partial"  # no such process
    dead.mkdir()
    remove_stale_siblings(tmp_path / "bundle")
    assert not dead.exists() and mine.exists()


# ---- atomic writes ---------------------------------------------------------------------------------------------------
# issue 17: fails when this bug is put back: plain `path.write_bytes` instead of an atomic write
def test_write_failing_after_open_keeps_the_old_file(tmp_path):
    from hf_melody.utils import atomic_write_bytes, atomic_write_text

    target = tmp_path / "results.json"
    atomic_write_text(target, "old")
    # a file-size limit makes the write itself fail once the file is open and partly written (EFBIG)
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, limit[1]))
    try:
        with pytest.raises(OSError):
            atomic_write_bytes(target, b"x" * 100_000)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
        signal.signal(signal.SIGXFSZ, previous)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # the temporary file is gone too
    atomic_write_bytes(target, b"x" * 100_000)  # and without the limit the same write succeeds
    assert target.stat().st_size == 100_000


# --------------------------------------------------------------------------------------------------------------
# atomic writes
# --------------------------------------------------------------------------------------------------------------
def test_failed_atomic_write_keeps_the_old_file_and_no_temporary(tmp_path):
    from hf_melody.utils import atomic_write_bytes, atomic_write_text

    target = tmp_path / "report.json"
    atomic_write_text(target, "old")
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "text is not bytes")  # fails inside the write
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


PROBES, probe = probe_registry()  # this file's probes: @probe(name) registers f(request, tmp_path)


# --------------------------------------------------------------------------------------------------------------
# row 13 (a fast companion of the kill test above): a re-save that fails leaves the good bundle
# --------------------------------------------------------------------------------------------------------------
@probe("13-failed-resave-keeps-the-old-bundle")
def _(request, tmp_path):
    import transformers.modeling_utils

    from hf_melody import MelodyTokenizer, build_model, load_model, save_bundle

    bundle = gpt2_bundle(tmp_path)
    before = {p.name: p.read_bytes() for p in bundle.iterdir()}
    tok = MelodyTokenizer()

    def disk_full(tensors, filename, metadata=None):  # half the weights reach the disk, then it is full
        Path(filename).write_bytes(b"\0" * 100)
        raise OSError(28, "No space left on device")

    with request.getfixturevalue("monkeypatch").context() as mp:
        mp.setattr(transformers.modeling_utils, "safe_save_file", disk_full)
        with pytest.raises(OSError, match="No space left"):
            save_bundle(build_model("original", tok, n_positions=32, seed=1), tok, bundle)
    assert {p.name: p.read_bytes() for p in bundle.iterdir()} == before
    assert sorted(p.name for p in bundle.parent.iterdir()) == ["bundle"], "no temporary folder left behind"
    load_model(bundle)


# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(PROBES))
def test_probe(name, request, tmp_path):
    PROBES[name](request, tmp_path)


# --------------------------------------------------------------------------------------------------------------
# issue 27: a full disk told plainly, the usual permissions
# --------------------------------------------------------------------------------------------------------------
# /dev/full fails every write with a real ENOSPC; RLIMIT_FSIZE (SIGXFSZ ignored) fails writes past the limit with
# EFBIG at the same write(2) calls a full disk would: the two stand-ins for a full disk that need no root.
@pytest.mark.skipif(not (os.path.exists("/dev/full") and stat.S_ISCHR(os.stat("/dev/full").st_mode)),
                    reason="no /dev/full device")
def test_real_enospc_from_each_writer_is_told_as_a_full_disk():
    import torch

    from hf_melody import DiskFullError
    from hf_melody.utils import disk_full_error

    failures = []
    with pytest.raises(OSError) as info:
        with open("/dev/full", "wb") as f:
            f.write(b"x" * 100_000)
    failures.append(info.value)
    with pytest.raises(RuntimeError) as info:  # torch.save keeps no errno: "unexpected pos ..."
        torch.save({"w": torch.zeros(10_000)}, "/dev/full")
    failures.append(info.value)
    for error in failures:
        told = disk_full_error(error, "out/checkpoint-4")
        assert isinstance(told, DiskFullError) and isinstance(told, OSError), error
        assert str(told).startswith("out/checkpoint-4: ") and "free space" in str(told) and "\n" not in str(told)
    assert "(ENOSPC)" in str(disk_full_error(failures[0], "x"))
    assert disk_full_error(OSError(13, "Permission denied"), "x") is None  # not a lack of room
    assert disk_full_error(RuntimeError("shape mismatch"), "x") is None


FULL_BUNDLE_RUNNER = r'''
import json, resource, signal, sys
from pathlib import Path

from hf_melody import DiskFullError, MelodyTokenizer, build_model, save_bundle
from hf_melody.utils import atomic_write_bytes

bundle, limit = Path(sys.argv[1]), int(sys.argv[2])
tok = MelodyTokenizer()
model = build_model("original", tok, n_positions=32, seed=1)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
told = {}
for what, write in [("bundle", lambda: save_bundle(model, tok, bundle)),
                    ("file", lambda: atomic_write_bytes(bundle.parent / "tune.mid", b"x" * (2 * limit)))]:
    try:
        write()
        told[what] = "written"
    except DiskFullError as e:
        told[what] = str(e)
print(json.dumps(told))
'''


def test_saving_a_bundle_onto_a_full_disk_is_told_in_one_line_and_keeps_the_old_bundle(tmp_path):
    bundle = gpt2_bundle(tmp_path)
    before = {p.name: p.read_bytes() for p in bundle.iterdir()}
    # 20 kB: the config and tokenizer fit, the weights (~160 kB, written by safetensors in Rust) do not
    proc = subprocess.run([sys.executable, "-c", FULL_BUNDLE_RUNNER, str(bundle), "20000"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    told = json.loads(proc.stdout.strip().splitlines()[-1])
    assert told["bundle"].startswith(f"{bundle}: File too large (EFBIG); free space"), told
    assert told["file"].startswith(f"{tmp_path / 'tune.mid'}: File too large (EFBIG); free space"), told
    assert {p.name: p.read_bytes() for p in bundle.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"], "nothing half-written beside it"


@pytest.mark.parametrize("umask,dirs,files", [(0o022, 0o755, 0o644), (0o027, 0o750, 0o640)], ids=["022", "027"])
def test_bundles_are_saved_with_the_usual_permissions(tmp_path, umask, dirs, files):
    from hf_melody import MelodyTokenizer, build_model, save_bundle

    tok = MelodyTokenizer()
    previous = os.umask(umask)
    try:
        bundle = save_bundle(build_model("original", tok, n_positions=32, seed=0), tok, tmp_path / "models" / "b")
        save_bundle(build_model("original", tok, n_positions=32, seed=1), tok, bundle)  # the swap path too
    finally:
        os.umask(previous)
    modes = {p.name: p.stat().st_mode & 0o777 for p in [bundle.parent, bundle, *bundle.rglob("*")]}
    assert set(BUNDLE_FILES) - {"training_info.json"} < set(modes)
    assert modes == {name: dirs if name in ("models", "b") else files for name in modes}
