"""Damaged sweep directories: every chunk is checked against the SHA-256 recorded in the
manifest; ``load_sweep`` names the bad chunks, ``--resume`` recomputes exactly those,
and the result is bit-for-bit the undamaged one."""

import json
import os
import warnings

import numpy as np
import pytest

import fastdecay as fd
from fastdecay.cli import main
from fastdecay.sweep import CorruptSweepError, SweepConfigError

CONFIG = {
    "run": {"steps": 60, "every": 6, "chunk_size": 4, "seed": 5},
    "curvatures": {"logspace": [-1, 1.5, 5]},
    "schedule": [{"kind": "step", "lr": 0.2, "gamma": 0.5, "period": [10, 25]}],
    "optimizer": {"kind": "momentum", "noise": 0.05},
}
N_CHUNKS = 3  # 2 schedules x 5 curvatures in chunks of 4


def chunk(out, k):
    return out / "chunks" / f"chunk-{k:06d}.npz"


def stamps(out):
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (out / "chunks").glob("chunk-*.npz")}


@pytest.fixture
def swept(tmp_path):
    out = tmp_path / "out"
    res = fd.sweep(CONFIG, out, progress=False, plots=False)
    assert len(stamps(out)) == N_CHUNKS
    return out, res


def same(a, b):
    for name in ("w", "loss", "displacement", "lr", "steps"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def empty(path):
    path.write_bytes(b"")


def garbage(path):
    path.write_bytes(os.urandom(path.stat().st_size))


def flip_one_byte(path):  # same size, one byte of the stored data changed
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def delete(path):
    path.unlink()


DAMAGE = [
    (truncate, "corrupt: its SHA-256"),
    (empty, "empty (0 bytes)"),
    (garbage, "corrupt: its SHA-256"),
    (flip_one_byte, "corrupt: its SHA-256"),
    (delete, "missing"),
]


@pytest.mark.parametrize("damage, reason", DAMAGE, ids=[d.__name__ for d, _ in DAMAGE])
def test_load_names_the_bad_chunk_and_resume_recomputes_it_bit_for_bit(swept, damage, reason, capsys):
    out, before = swept
    damage(chunk(out, 1))
    kept = {name: stamp for name, stamp in stamps(out).items() if name != "chunk-000001.npz"}
    with pytest.raises(CorruptSweepError) as info:
        fd.load_sweep(out)
    message = str(info.value)
    assert "1 of 3 chunks cannot be used" in message and f"chunk-000001.npz ({reason}" in message, message
    assert "--resume" in message and info.value.bad.keys() == {1}
    assert isinstance(info.value, SweepConfigError)  # the CLI's one-line error

    capsys.readouterr()
    resumed = fd.sweep(CONFIG, out, resume=True, progress=True, plots=False)
    err = capsys.readouterr().err
    if reason == "missing":  # the ordinary resume: nothing to report
        assert "recomputing" not in err
    else:
        assert f"chunk-000001.npz: {reason}" in err and "recomputing it" in err, err
    same(resumed, before)
    same(fd.load_sweep(out), before)
    assert {n: s for n, s in stamps(out).items() if n != "chunk-000001.npz"} == kept  # the others were kept
    with np.load(out / "results.npz") as z:
        np.testing.assert_array_equal(z["loss"], before.loss)


def test_cli_resume_says_which_chunks_it_recomputes(swept, tmp_path, capsys):
    out, before = swept
    cfg = tmp_path / "cfg.toml"
    cfg.write_text('[run]\nsteps = 60\nevery = 6\nchunk_size = 4\nseed = 5\n[curvatures]\nlogspace = [-1, 1.5, 5]\n'
                   '[[schedule]]\nkind = "step"\nlr = 0.2\ngamma = 0.5\nperiod = [10, 25]\n'
                   '[[optimizer]]\nkind = "momentum"\nnoise = 0.05\n')
    truncate(chunk(out, 0))
    empty(chunk(out, 2))
    assert main(["sweep", str(cfg), "--out", str(out), "--resume", "--no-plots", "--no-progress"]) == 0
    stdout = capsys.readouterr().out
    assert "chunk-000000.npz: corrupt" in stdout and "chunk-000002.npz: empty (0 bytes); recomputing it" in stdout
    assert "2 of 3 chunks run" in stdout
    same(fd.load_sweep(out), before)


def test_library_resume_without_progress_warns(swept):
    out, before = swept
    garbage(chunk(out, 2))
    with pytest.warns(RuntimeWarning, match=r"chunk-000002\.npz: corrupt.*recomputing it"):
        resumed = fd.sweep(CONFIG, out, resume=True, progress=False, plots=False)
    same(resumed, before)


def test_every_bad_chunk_is_named_at_once(swept):
    out, _ = swept
    delete(chunk(out, 0))
    empty(chunk(out, 1))
    truncate(chunk(out, 2))
    with pytest.raises(CorruptSweepError) as info:
        fd.load_sweep(out)
    assert sorted(info.value.bad) == [0, 1, 2]
    assert "3 of 3 chunks" in str(info.value)


def test_a_chunk_in_the_wrong_place_is_refused(swept):
    """A valid chunk file copied over another one's name: the checksum catches it, and
    without a recorded checksum its content does."""
    out, before = swept
    (out / "chunks" / "chunk-000001.npz").write_bytes(chunk(out, 0).read_bytes())
    with pytest.raises(CorruptSweepError, match=r"chunk-000001\.npz \(corrupt"):
        fd.load_sweep(out)
    manifest = json.loads((out / "sweep.json").read_text())
    del manifest["chunks"]["1"]
    (out / "sweep.json").write_text(json.dumps(manifest))
    with pytest.raises(CorruptSweepError, match=r"chunk-000001\.npz \(wrong content: holds trajectories 0\.\.4"):
        fd.load_sweep(out)
    with pytest.warns(RuntimeWarning) as caught:
        resumed = fd.sweep(CONFIG, out, resume=True, progress=False, plots=False)
    assert [str(w.message).split(": ", 2)[-1] for w in caught] == [
        "wrong content: holds trajectories 0..4 of optimizer 0, expected 4..8 of 0; recomputing it"]
    same(resumed, before)


def test_complete_chunk_without_checksum_is_kept_and_recorded(swept):
    """A run killed between renaming a chunk into place and recording its checksum (or a
    sweep directory written before checksums were kept): the chunk loads, holds what it
    should, and is kept, not recomputed; resume records its checksum."""
    out, before = swept
    manifest = json.loads((out / "sweep.json").read_text())
    manifest.pop("chunks")
    manifest.pop("checksum")
    (out / "sweep.json").write_text(json.dumps(manifest))
    kept = stamps(out)
    same(fd.load_sweep(out), before)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resumed = fd.sweep(CONFIG, out, resume=True, progress=False, plots=False)
    same(resumed, before)
    assert stamps(out) == kept
    recorded = json.loads((out / "sweep.json").read_text())["chunks"]
    assert sorted(recorded) == ["0", "1", "2"] and all(len(v) == 64 for v in recorded.values())


def test_manifest_records_the_sha256_of_each_chunk_file(swept):
    import hashlib

    out, _ = swept
    manifest = json.loads((out / "sweep.json").read_text())
    assert manifest["checksum"] == "sha256"
    for k in range(N_CHUNKS):
        assert manifest["chunks"][str(k)] == hashlib.sha256(chunk(out, k).read_bytes()).hexdigest()


def test_edited_manifest_config_is_refused(swept):
    out, _ = swept
    manifest = json.loads((out / "sweep.json").read_text())
    manifest["config"]["run"]["seed"] = 6
    (out / "sweep.json").write_text(json.dumps(manifest))
    with pytest.raises(SweepConfigError, match="does not hash to its config_hash"):
        fd.load_sweep(out)


def _begun_under_stream_1(out):
    """The manifest as a fastdecay of the float64 noise stream wrote it (no record)."""
    path = out / "sweep.json"
    manifest = json.loads(path.read_text())
    assert manifest.pop("noise_stream") == 2
    path.write_text(json.dumps(manifest))


def test_a_noisy_sweep_begun_under_another_noise_stream_is_not_resumed(swept):
    """Its chunks drew other numbers than new ones would: refused before anything is
    written, the finished chunks untouched, and a fresh directory gives the whole sweep."""
    out, _ = swept
    _begun_under_stream_1(out)
    delete(chunk(out, 2))
    before = stamps(out)
    with pytest.raises(SweepConfigError, match=r"another gradient-noise stream \(stream 1; this version draws "
                                                  r"stream 2\).*another --out"):
        fd.sweep(CONFIG, out, resume=True, progress=False, plots=False)
    assert stamps(out) == before


def test_a_noiseless_sweep_resumes_across_noise_streams(tmp_path):
    config = {**CONFIG, "optimizer": {"kind": "momentum"}}
    out = tmp_path / "out"
    whole = fd.sweep(config, out, progress=False, plots=False)
    _begun_under_stream_1(out)
    delete(chunk(out, 1))
    same(fd.sweep(config, out, resume=True, progress=False, plots=False), whole)


def test_a_chunk_drawn_by_another_noise_stream_is_refused(tmp_path, monkeypatch):
    """A chunk computed by another fastdecay (a Dask worker with an older version, whose
    chunks record no stream) is refused before it is written: its numbers would join the
    sample unseen. A noiseless sweep takes such chunks."""
    import importlib

    sweep_run = importlib.import_module("fastdecay.sweep.run")  # (fd.sweep is the function)

    real = sweep_run.run_chunk

    def old_worker(config, k, progress=None):
        arrays = real(config, k, progress)
        del arrays["noise_stream"]
        return arrays

    monkeypatch.setattr(sweep_run, "run_chunk", old_worker)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match=r"chunk 0 was computed by a fastdecay with another gradient-noise "
                                           r"stream \(stream 1; this one draws stream 2\)"):
        fd.sweep(CONFIG, out, progress=False, plots=False)
    assert not list((out / "chunks").glob("chunk-*.npz"))
    noiseless = {**CONFIG, "optimizer": {"kind": "momentum"}}
    res = fd.sweep(noiseless, tmp_path / "quiet", progress=False, plots=False)
    monkeypatch.setattr(sweep_run, "run_chunk", real)
    same(res, fd.sweep(noiseless, tmp_path / "quiet2", progress=False, plots=False))


@pytest.mark.parametrize("resume", [False, True])
def test_a_sweep_stopped_before_its_manifest_is_taken_over(tmp_path, resume):
    """A run killed (or stopped with Ctrl-C) after it made its directory and lock and before
    its first manifest was in place (a large config's manifest takes a while to write) leaves
    only its own start; the next run, resumed or not, takes it over and gives the bits of a
    run into a fresh directory (it was refused as a directory holding no fastdecay sweep)."""
    out = tmp_path / "out"
    (out / "chunks").mkdir(parents=True)
    (out / "sweep.lock").write_bytes(b"")
    (out / "sweep.json.tmp-2545").write_bytes(b"")
    (out / "chunks" / "chunk-000000.npz.tmp-2545").write_bytes(b"half")
    res = fd.sweep(CONFIG, out, resume=resume, progress=False, plots=False)
    same(res, fd.sweep(CONFIG, tmp_path / "fresh", progress=False, plots=False))
    assert sorted(p.name for p in out.iterdir()) == ["chunks", "results.npz", "summary.txt", "sweep.json", "sweep.lock"]
    assert len(stamps(out)) == N_CHUNKS and not list((out / "chunks").glob("*.tmp-*"))
    # anything else in the directory is still not a sweep of ours
    for other in ("notes.txt", "chunks/chunk-000000.npz"):
        d = tmp_path / f"other-{resume}-{other.replace('/', '-')}"
        (d / "chunks").mkdir(parents=True)
        (d / other).write_bytes(b"x")
        with pytest.raises(SweepConfigError, match="is not empty and holds no fastdecay sweep"):
            fd.sweep(CONFIG, d, resume=resume, progress=False, plots=False)
