"""bench/bench_train.py's interleaved training (torch fused AdamW vs fastdecay.torch.AdamW), 300 steps,
under the caller's environment: optimizer ms a step (median) and the whole step's.
    cd <repository> && PYTHONPATH=<tree> python bench/results/cpu-zen3-2026-12-07d/train_env.py"""
import os, sys
sys.path.insert(0, "bench")
import bench_train as B
import numba
for name in ("convnet-channels_last", "transformer"):
    r = B._train_interleaved(name, 300)
    env = " ".join(f"{k}={os.environ[k]}" for k in ("OMP_WAIT_POLICY", "NUMBA_THREADING_LAYER", "GOMP_SPINCOUNT") if k in os.environ) or "(defaults)"
    print(f"{env:40s} layer={numba.threading_layer():9s} {name:22s} optimizer ms fastdecay {r['fastdecay']['optimizer_ms']:.3f} "
          f"torch fused {r['torch fused']['optimizer_ms']:.3f} ratio {r['torch fused']['optimizer_ms'] / r['fastdecay']['optimizer_ms']:.2f}x; "
          f"step ms {r['fastdecay']['step_ms']:.2f} / {r['torch fused']['step_ms']:.2f}")
