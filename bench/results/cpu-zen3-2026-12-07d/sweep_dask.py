"""The example sweep (examples/sweep.toml, 1,000 steps, chunks of 512) on a local Dask cluster of 2 worker processes (1 thread each) on this machine's cores,
against the same sweep run in this process (argv[1] = local: the mean of two sweeps, the first not warmed). Worker environment from argv[1]: 'inherit' or 'one-thread'
(NUMBA_NUM_THREADS=1 in the workers) or 'passive' (OMP_WAIT_POLICY=PASSIVE).
    PYTHONPATH=<tree> python sweep_dask.py inherit"""
import sys, time, tempfile
import fastdecay as fd
from distributed import Client, LocalCluster

import tomllib
import pathlib
with open(pathlib.Path(fd.__file__).parents[1] / "examples" / "sweep.toml", "rb") as f:
    CONFIG = tomllib.load(f)
CONFIG.pop("out")
CONFIG["run"].update(steps=1000, every=100, chunk_size=512)

if __name__ == "__main__":
    mode = sys.argv[1]
    env = {"inherit": {}, "one-thread": {"NUMBA_NUM_THREADS": "1"}, "passive": {"OMP_WAIT_POLICY": "PASSIVE"}}.get(mode)
    if mode == "local":
        t = time.perf_counter(); fd.sweep(CONFIG, out=tempfile.mkdtemp(), progress=False); fd.sweep(CONFIG, out=tempfile.mkdtemp(), progress=False)
        print("local (one process)", f"{(time.perf_counter() - t) / 2:.2f} s"); sys.exit()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, env=env, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        fd.sweep(CONFIG, out=tempfile.mkdtemp(), client=client, progress=False)  # warm: the workers load the kernels
        t = time.perf_counter()
        fd.sweep(CONFIG, out=tempfile.mkdtemp(), client=client, progress=False)
        print(mode, f"{time.perf_counter() - t:.2f} s")
