"""Hashes of every output of a broad grid of fd.simulate calls, to compare two source trees
bit for bit (run it once per tree and diff the outputs; see bench/RESULTS.md, "Simulation
engines without per-rule code"):

    PYTHONPATH=TREE python bench/simulate_bits.py > TREE.txt

Prints one line per array (the call, the output, the first 16 hex digits of its SHA-256):
final weights, recorded loss, displacement and rate, and the final momentum and second-moment
buffers, captured by wrapping the CPU kernel's ``simulate_chunk``; the count on stderr.
"""

import hashlib
import itertools
import sys

import numpy as np


def main():
    import fastdecay as fd
    from fastdecay._cpu import simulate as S

    final = {}
    orig = S.simulate_chunk
    def wrapped(w, buf, sq, *rest):
        orig(w, buf, sq, *rest)
        final["buf"], final["sq"] = buf.copy(), sq.copy()
    S.simulate_chunk = wrapped

    OPTS = ["gd", "momentum", "momentum_lr_in_buffer", "nesterov", "adam", "adamw", "lion"]
    def lr_kind(kind, nb):
        if kind == "exp":          # shared plain exponential: multiplicative
            return fd.exponential(0.05, gamma=0.995)
        if kind == "step":         # shared staircase with drops (closed form)
            return fd.step(0.05, 0.5, 7)
        if kind == "cos":          # shared cosine with warmup (closed form, several segments)
            return fd.warmup(fd.cosine(0.05, 30), 4)
        if kind == "pexp":         # per trajectory, all exponential/constant
            g = np.linspace(0.98, 0.999, nb)
            return fd.exponential(0.05, gamma=g)
        if kind == "pmix":         # per trajectory, mixed (NaN ratios: closed form; drops)
            k = [fd.exponential(0.04, gamma=0.99), fd.step(0.05, 0.5, 5), fd.warmup(fd.cosine(0.05, 30), 3), fd.constant(0.03)]
            return fd.stack([k[i % 4] for i in range(nb)])
        raise ValueError(kind)

    rows = []
    def case(opt, dtype, d, nb, lrk, noise, every, steps=23, wd=0.0, on_drop="keep", mom=0.9, betas=(0.9, 0.999), chunk=None, w0=1.0):
        rng = np.random.default_rng(d * 1000 + nb)
        lam = rng.uniform(-0.05, 1.5, (nb, d))
        kw = dict(steps=steps, optimizer=opt, dtype=dtype, noise=noise, every=every, weight_decay=wd, on_drop=on_drop,
                  seed=7, chunk_steps=chunk, w0=w0)
        if opt in ("momentum", "momentum_lr_in_buffer", "nesterov"):
            kw["momentum"] = mom
        if opt in ("adam", "adamw", "lion"):
            kw["betas"] = betas
        final.clear()
        r = fd.simulate(lam, lr_kind(lrk, nb), **kw)
        name = f"{opt}|{np.dtype(dtype).name}|d{d}|n{nb}|{lrk}|noise{noise}|every{every}|steps{steps}|wd{type(wd).__name__}|{on_drop}|mom{type(mom).__name__}|b{type(betas[0]).__name__}|chunk{chunk}"
        outs = dict(w=r.w, loss=r.loss, disp=r.displacement, lr=r.lr, buf=final.get("buf"), sq=final.get("sq"))
        for k, a in outs.items():
            if a is None or a.size == 0:
                continue
            print(name, k, hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16])
            rows.append(1)

    wd_sched = fd.cosine(0.02, 30)
    for opt, dtype, d, lrk, noise, every in itertools.product(OPTS, (np.float64, np.float32), (1, 3), ("exp", "step", "pexp", "pmix"), (0.0, 0.1), (None, 4)):
        nb = 2500 if d == 1 else 700
        case(opt, dtype, d, nb, lrk, noise, every, wd=0.01 if opt in ("adamw", "lion") else 0.0)
    # on_drop on the momentum family, schedules with drops, shared and per trajectory
    for opt, dtype, d, lrk, od, noise, every in itertools.product(OPTS[1:4], (np.float64, np.float32), (1, 3), ("step", "pmix"), ("reset", "rescale"), (0.0, 0.1), (None, 1)):
        case(opt, dtype, d, 1100 if d == 1 else 400, lrk, noise, every, on_drop=od)
    # scheduled / per-trajectory weight decay and momentum (beta1), every=1, chunks of 5
    pw = fd.stack([fd.constant(0.01), fd.cosine(0.02, 30), fd.exponential(0.03, gamma=0.99)] * 100)
    pm = np.linspace(0.5, 0.95, 300)
    for opt, dtype, d, lrk, var, noise, every in itertools.product(OPTS, (np.float64, np.float32), (1, 3), ("cos", "pexp"), ("wd_sched", "wd_per", "mom_sched", "mom_per", "chunk"), (0.0, 0.1), (None, 1)):
        kw = {}
        if var == "wd_sched":
            kw["wd"] = wd_sched
        elif var == "wd_per":
            kw["wd"] = pw
        elif var == "mom_sched":
            m = fd.one_cycle(0.1, 30).momentum
            kw["mom"] = m
            kw["betas"] = (m, 0.99)
        elif var == "mom_per":
            kw["mom"] = pm
            kw["betas"] = (fd.stack([fd.constant(x) for x in pm]), 0.99)
        else:
            kw["chunk"] = 5
        case(opt, dtype, d, 300, lrk, noise, every, **kw)
    # long runs across the re-anchoring period, big d (one trajectory a tile), chunked
    for opt, dtype in itertools.product(OPTS, (np.float64, np.float32)):
        case(opt, dtype, 1, 1500, "pexp", 0.0, None, steps=1100)
        case(opt, dtype, 1, 1500, "pmix", 0.1, 100, steps=1100, chunk=300)
        case(opt, dtype, 1500, 3, "pexp", 0.1, 3, steps=17)
        case(opt, dtype, 1500, 3, "exp", 0.0, None, steps=17, chunk=4)
    print("arrays", len(rows), file=sys.stderr)


if __name__ == "__main__":
    main()
