"""fastdecay sweep on a Dask cluster: chunks as tasks, bit-identical to the local run."""

import os
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

import fastdecay as fd  # noqa: E402
from fastdecay.sweep import SchedulerUnreachable, chunk_plan, parse_config  # noqa: E402
from fastdecay.cli import main  # noqa: E402

CONFIG = {
    "run": {"steps": 300, "every": 30, "chunk_size": 7, "seed": 11},
    "curvatures": {"logspace": [-1, 2, 9]},
    "schedule": [{"kind": "step", "lr": 0.05, "gamma": 0.5, "period": [30, 60]},
                 {"kind": "exponential", "lr": 0.05, "half_life": 30}],
    "optimizer": [{"kind": "momentum_lr_in_buffer", "on_drop": ["keep", "reset"], "noise": 0.02},
                  {"kind": "adamw", "weight_decay": 0.01, "noise": 0.02}],
}


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  worker_dashboard_address=":0") as c:
        yield c


def test_cluster_results_are_bit_identical_to_local(cluster, tmp_path):
    local = fd.sweep(CONFIG, progress=False)
    with distributed.Client(cluster) as client:
        remote = fd.sweep(CONFIG, tmp_path / "out", client=client, progress=False, plots=False)
        # the work really ran on the two worker processes (asked of the scheduler: the client's
        # scheduler_info() may answer from a cache whose worker list is empty)
        assert len(client.nthreads()) == 2
    assert remote.w.shape == (3, 3, 9)
    np.testing.assert_array_equal(remote.w, local.w)
    np.testing.assert_array_equal(remote.loss, local.loss)
    np.testing.assert_array_equal(remote.displacement, local.displacement)
    n_chunks = len(chunk_plan(parse_config(CONFIG)).chunks)
    assert sorted(os.listdir(tmp_path / "out" / "chunks")) == [f"chunk-{k:06d}.npz" for k in range(n_chunks)]


def test_cli_scheduler_address(cluster, tmp_path, capsys):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text('[run]\nsteps = 100\nchunk_size = 3\n[curvatures]\nvalues = [0.5, 1.0, 2.0, 4.0]\n'
                   '[[schedule]]\nkind = "step"\nlr = 0.1\ngamma = 0.5\nperiod = 20\n')
    out = tmp_path / "out"
    assert main(["sweep", str(cfg), "--out", str(out), "--scheduler", cluster.scheduler_address,
                 "--no-plots", "--no-progress"]) == 0
    assert "2 of 2 chunks run" in capsys.readouterr().out
    np.testing.assert_array_equal(fd.load_sweep(out).w, fd.sweep(parse_config(cfg), progress=False).w)


def test_unreachable_scheduler_fails_fast_and_writes_nothing(tmp_path, capsys):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text('[run]\nsteps = 10\n[curvatures]\nvalues = [1.0]\n[[schedule]]\nkind = "constant"\nlr = 0.1\n')
    out = tmp_path / "out"
    started = time.monotonic()
    code = main(["sweep", str(cfg), "--out", str(out), "--scheduler", "tcp://127.0.0.1:9", "--connect-timeout", "2",
                 "--no-progress"])
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 2 and "cannot reach the Dask scheduler at 'tcp://127.0.0.1:9' within 2 s" in err
    assert err.count("\n") == 1
    assert elapsed < 15, elapsed
    assert not out.exists()
    with pytest.raises(SchedulerUnreachable):
        fd.sweep(str(cfg), scheduler="tcp://127.0.0.1:9", connect_timeout=1, progress=False)


def test_scheduler_without_workers_fails_fast(tmp_path):
    with distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as empty:
        with distributed.Client(empty) as client:
            started = time.monotonic()
            with pytest.raises(SchedulerUnreachable, match="no workers"):
                fd.sweep({"run": {"steps": 5}, "curvatures": {"values": [1.0]},
                          "schedule": {"kind": "constant", "lr": 0.1}},
                         client=client, connect_timeout=1, progress=False)
            assert time.monotonic() - started < 10


def test_expected_sweep_on_the_cluster_is_bit_identical_to_local(cluster, tmp_path):
    cfg = {"run": {"mode": "expected", "steps": 200, "every": 20, "chunk_size": 5},
           "curvatures": {"logspace": [-1, 2, 7]},
           "schedule": [{"kind": "step", "lr": 0.05, "gamma": 0.5, "period": [40, 80]}],
           "optimizer": {"kind": "momentum", "noise": 0.1, "batch_size": [1, 8]}}
    local = fd.sweep(cfg, progress=False)
    with distributed.Client(cluster) as client:
        remote = fd.sweep(cfg, tmp_path / "out", client=client, progress=False, plots=False)
    np.testing.assert_array_equal(remote.loss, local.loss)
    np.testing.assert_array_equal(remote.second_moment, local.second_moment)
    np.testing.assert_array_equal(fd.load_sweep(tmp_path / "out").w, local.w)


@pytest.mark.parametrize("address", ["notanaddress", "tcp://127.0.0.1", "localhost:abc"])
def test_malformed_scheduler_address_is_one_line_and_makes_no_client(tmp_path, capsys, address):
    """A malformed address is refused before a Client is made (a Client refused halfway
    through its start prints a traceback from its finaliser and waits its timeout)."""
    cfg = tmp_path / "cfg.toml"
    cfg.write_text('[run]\nsteps = 10\n[curvatures]\nvalues = [1.0]\n[[schedule]]\nkind = "constant"\nlr = 0.1\n')
    started = time.monotonic()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(distributed, "Client", lambda *a, **k: pytest.fail("a Client was made"))
        code = main(["sweep", str(cfg), "--out", str(tmp_path / "out"), "--scheduler", address, "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "is not a Dask scheduler address" in err and err.count("\n") == 1
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("lost, said", [
    (lambda: distributed.client.FutureCancelledError("fastdecay-sweep-x-0", "scheduler-connection-lost"),
     r"\(scheduler-connection-lost\)"),
    # the other way a lost scheduler shows: the connection a result comes on closed
    (lambda: distributed.comm.core.CommClosedError("in <TCP (closed) ConnectionPool.gather>: Stream is closed"),
     r"\(in <TCP \(closed\) ConnectionPool.gather>: Stream is closed\)"),
], ids=["cancelled", "connection closed"])
def test_a_scheduler_lost_mid_sweep_is_one_error_naming_it(cluster, tmp_path, monkeypatch, lost, said):
    """Tasks cancelled under the sweep, or their results' connection closed (the scheduler
    lost): SchedulerUnreachable saying so and how to go on, not distributed's traceback."""
    def as_completed(futures, **kwargs):
        raise lost()
        yield  # (a generator, as distributed's)

    monkeypatch.setattr(distributed, "as_completed", as_completed)
    with distributed.Client(cluster) as client:
        with pytest.raises(SchedulerUnreachable, match=r"were cancelled or lost their connection " + said
                                                       + r"; the chunks finished are kept: run it again with --resume"):
            fd.sweep(CONFIG, tmp_path / "out", client=client, progress=False, plots=False)
