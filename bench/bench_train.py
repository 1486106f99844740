"""End to end: a small channels_last conv net and a small transformer trained on synthetic
data with torch's AdamW (``fused=True``) and with ``fastdecay.torch.AdamW``, the same
warmup + cosine schedule, the same initial weights and batches.

The two runs are interleaved step by step in one process (torch's step t, then
fastdecay's step t), so load on the machine falls on both alike. Per run the
benchmark records the optimizer's time per step (median over the steps after the
first few; for torch ``optimizer.step()`` plus ``scheduler.step()``, which sets the
rate fastdecay reads inside its kernel), the whole training step's time, and the
final loss (mean of the last 10 steps). ``extra_info`` carries the figures;
``-s`` prints one summary line per model.

Run: ``flock /tmp/fastdecay-bench.lock .venv/bin/python -m pytest bench/bench_train.py
--benchmark-only -q -s`` (``make test`` runs it once, a few steps, as a smoke test).
"""

import copy
import statistics
import time

import pytest

import fastdecay as fd

torch = pytest.importorskip("torch")
import fastdecay.torch as fdt  # noqa: E402

STEPS, WARMUP = 300, 30
SMOKE_STEPS = 4
LR, WEIGHT_DECAY = 2e-3, 1e-2


class ConvNet(torch.nn.Module):
    """Four 3x3 convolutions with batch norm (32 to 128 channels) and a linear head: ~0.3 M parameters."""

    def __init__(self, classes=10):
        super().__init__()
        layers, channels = [], 3
        for width, stride in ((32, 1), (64, 2), (128, 2), (128, 1)):
            layers += [torch.nn.Conv2d(channels, width, 3, stride, 1, bias=False), torch.nn.BatchNorm2d(width),
                       torch.nn.ReLU()]
            channels = width
        self.features = torch.nn.Sequential(*layers)
        self.head = torch.nn.Linear(channels, classes)

    def forward(self, x):
        return self.head(self.features(x).mean((2, 3)))


class TinyTransformer(torch.nn.Module):
    """Token and position embeddings, two encoder layers (d_model 128, 4 heads), a vocabulary head."""

    def __init__(self, vocab=128, length=32, width=128):
        super().__init__()
        self.tokens = torch.nn.Embedding(vocab, width)
        self.positions = torch.nn.Parameter(0.02 * torch.randn(length, width))
        layer = torch.nn.TransformerEncoderLayer(width, 4, 2 * width, dropout=0.0, batch_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = torch.nn.Linear(width, vocab)

    def forward(self, x):
        return self.head(self.encoder(self.tokens(x) + self.positions))


def _conv_task(steps, batch, generator):
    """Noisy images whose class a fixed random teacher gives from their channel means."""
    teacher = torch.randn(3, 10, generator=generator)
    means = torch.randn(steps, batch, 3, generator=generator)
    x = means[..., None, None] + torch.randn(steps, batch, 3, 32, 32, generator=generator)
    return x, (means @ teacher).argmax(-1)


def _sequence_task(steps, batch, generator, vocab=128, length=32):
    """Token sequences; the target at each position is the next token of the vocabulary."""
    x = torch.randint(0, vocab, (steps, batch, length), generator=generator)
    return x, (x + 1) % vocab


MODELS = {
    "convnet-channels_last": (ConvNet, _conv_task, 32),
    "transformer": (TinyTransformer, _sequence_task, 16),
}


def _loss(model, x, y):
    if x.dim() == 4:  # images: channels_last, as the model is
        x = x.contiguous(memory_format=torch.channels_last)
    out = model(x)
    return torch.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))


def _train_interleaved(name, steps):
    """(figures of torch fused, figures of fastdecay): the two trainings interleaved step by step."""
    make, task, batch = MODELS[name]
    torch.manual_seed(0)
    model = make()
    if name.startswith("convnet"):
        model = model.to(memory_format=torch.channels_last)
    schedule = fd.warmup(fd.cosine(LR, steps - min(WARMUP, steps // 2)), min(WARMUP, steps // 2))
    models = {"torch fused": model, "fastdecay": copy.deepcopy(model)}
    ref = torch.optim.AdamW(models["torch fused"].parameters(), lr=LR, weight_decay=WEIGHT_DECAY, fused=True)
    runs = {
        "torch fused": (ref, fdt.LRScheduler(ref, schedule)),
        "fastdecay": (fdt.AdamW(models["fastdecay"].parameters(), lr=schedule, weight_decay=WEIGHT_DECAY), None),
    }
    x, y = task(steps, batch, torch.Generator().manual_seed(1))
    figures = {impl: {"optimizer_s": [], "step_s": [], "loss": []} for impl in runs}
    for t in range(steps):
        for impl, (opt, sched) in runs.items():
            start = time.perf_counter()
            opt.zero_grad()
            loss = _loss(models[impl], x[t], y[t])
            loss.backward()
            before = time.perf_counter()
            opt.step()
            if sched is not None:
                sched.step()
            end = time.perf_counter()
            figures[impl]["optimizer_s"].append(end - before)
            figures[impl]["step_s"].append(end - start)
            figures[impl]["loss"].append(loss.item())
    params = sum(p.numel() for p in model.parameters())
    return {impl: _summary(f, params) for impl, f in figures.items()}


def _summary(f, params):
    settled = slice(min(5, len(f["loss"]) - 1), None)  # the first steps allocate state (and compile)
    return {
        "optimizer_ms": 1e3 * statistics.median(f["optimizer_s"][settled]),
        "step_ms": 1e3 * statistics.median(f["step_s"][settled]),
        "final_loss": statistics.fmean(f["loss"][-10:]),
        "first_loss": f["loss"][0],
        "params": params,
    }


@pytest.mark.parametrize("name", list(MODELS))
def test_train(benchmark, smoke, name):
    steps = SMOKE_STEPS if smoke else STEPS
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        result = {}
        benchmark.pedantic(lambda: result.update(_train_interleaved(name, steps)), rounds=1, iterations=1)
    finally:
        torch.set_num_threads(threads)
    ours, ref = result["fastdecay"], result["torch fused"]
    benchmark.extra_info.update(
        impl="fastdecay vs torch fused", model=name, steps=steps, params=ours["params"],
        **{f"fastdecay_{k}": round(v, 6) for k, v in ours.items() if k != "params"},
        **{f"torch_fused_{k}": round(v, 6) for k, v in ref.items() if k != "params"},
        optimizer_speedup=round(ref["optimizer_ms"] / ours["optimizer_ms"], 3),
    )
    print(f"\n{name} ({ours['params']:,} params, {steps} steps): optimizer ms/step fastdecay "
          f"{ours['optimizer_ms']:.3f} vs torch fused {ref['optimizer_ms']:.3f} "
          f"({ref['optimizer_ms'] / ours['optimizer_ms']:.2f}x); training step ms {ours['step_ms']:.2f} vs "
          f"{ref['step_ms']:.2f}; final loss {ours['final_loss']:.5f} vs {ref['final_loss']:.5f} "
          f"(first {ours['first_loss']:.4f})")
    # the same training: the losses agree to float32 noise at every step of a smoke run,
    # and at the end of a full one (the trajectories part at the rounding level only)
    assert abs(ours["final_loss"] - ref["final_loss"]) <= 0.02 * abs(ref["final_loss"]) + 1e-3
    if not smoke:
        assert ours["final_loss"] < 0.7 * ours["first_loss"]  # it did learn
