"""The table of update rules (``fastdecay._rules``) drives every layer: these tests run
each fused update and each rule through the public calls the table names, so a new row
is tested (and a row whose layers are missing fails) without editing this file."""

import functools

import numpy as np
import pytest

import fastdecay as fd
from fastdecay import _rules as R
from fastdecay import reference as ref

FUSED = sorted(R.FUSED)


def _state(fused, arrays):
    """The state keyword arguments of ``fused``: one array per buffer the defaults use."""
    return {key: arrays() for key in fused.state_keys if key not in fused.optional}


@pytest.mark.parametrize("kernel", FUSED)
def test_every_fused_update_is_public_and_in_every_backend(kernel):
    from fastdecay._cpu import updates as cpu
    from fastdecay._gpu import _source

    fused = R.FUSED[kernel]
    assert fused.function in fd.__all__ and callable(getattr(fd, fused.function))
    from fastdecay._cpu import rules

    assert callable(getattr(rules, f"{kernel}_kernel"))
    cpu.signature(kernel, "bfloat16", "float32")  # the kernel's argument list from the table
    assert f"{kernel}_f32" in _source.KERNELS["updates.cu"] and f"{kernel}_bf16" in _source.KERNELS["updates.cu"]
    import fastdecay.torch as fdt

    for name in fused.torch_classes:
        assert name in fdt.__all__


@pytest.mark.parametrize("kernel", FUSED)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_fused_update_on_a_list_equals_single_calls(kernel, dtype):
    fused = R.FUSED[kernel]
    update = getattr(fd, fused.function)
    rng = np.random.default_rng(7)
    shapes = [(5,), (3, 7), (1025,)]
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
    state = {key: [np.zeros(s, dtype) for s in shapes] for key in _state(fused, lambda: None)}
    singles = [(p.copy(), {key: value[k].copy() for key, value in state.items()}) for k, p in enumerate(params)]
    lr = fd.warmup(fd.cosine(0.05, 20), 3)
    for t in range(6):
        update(params, grads, **state, step=t, lr=lr, weight_decay=0.01, **fused.example)
        for (p, s), g in zip(singles, grads):
            update(p, g, **s, step=t, lr=lr, weight_decay=0.01, **fused.example)
    for k, (p, s) in enumerate(singles):
        np.testing.assert_array_equal(params[k], p)
        for key, value in s.items():
            np.testing.assert_array_equal(state[key][k], value)
    assert not np.array_equal(params[0], singles[0][0] * 0)  # something was computed


@pytest.mark.parametrize("kernel", FUSED)
def test_every_state_buffer_is_checked_by_name_before_anything_is_written(kernel):
    fused = R.FUSED[kernel]
    update = getattr(fd, fused.function)
    for bad_key in _state(fused, lambda: None):
        w, g = np.arange(6.0), np.ones(6)
        state = _state(fused, lambda: np.full(6, 0.5))
        state[bad_key] = np.zeros(5)
        before = [a.copy() for a in (w, g, *state.values())]
        with pytest.raises(ValueError, match=bad_key):
            update(w, g, **state, step=2, lr=0.1, **fused.example)
        for a, b in zip((w, g, *state.values()), before):
            np.testing.assert_array_equal(a, b)


def test_torch_state_keys_come_from_the_table():
    import torch

    import fastdecay.torch as fdt

    for kernel, fused in R.FUSED.items():
        for name in fused.torch_classes:
            w = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
            options = dict(momentum=0.9) if kernel == "sgd" else {}
            opt = getattr(fdt, name)([w], lr=0.1, **options)
            w.grad = torch.ones(3, dtype=torch.float64)
            opt.step()
            keys = set(opt.state[w]) - {"step"}
            assert keys == {k for k in fused.state_keys if k not in fused.optional}, (name, keys)


@pytest.mark.parametrize("rule", R.NAMES)
def test_every_rule_simulates_as_the_oracle_says(rule):
    """Every row: ``fd.simulate`` against ``fastdecay.reference.simulate_quadratic``,
    a step schedule with drops, weight decay, two coordinates, float64."""
    lam = np.array([0.7, 2.3])
    lr = fd.step(0.2, 0.5, 9)
    options = dict(momentum=0.8, betas=(0.85, 0.99), weight_decay=0.01, on_drop="rescale")
    got = fd.simulate(lam, lr, steps=40, optimizer=rule, w0=[1.0, -0.5], **options).w
    want, _ = ref.simulate_quadratic(lam, lr, steps=40, optimizer=rule, w0=np.array([1.0, -0.5]),
                                     drops=[9, 18, 27, 36], **options)
    np.testing.assert_allclose(got, want[-1], rtol=1e-10, atol=1e-14)


def test_names_and_codes_are_one_list():
    import importlib

    from fastdecay.reference import _simulate as ref_simulate
    from fastdecay.sweep import config

    simulate, expected = (importlib.import_module(f"fastdecay.{m}") for m in ("simulate", "expected"))
    assert simulate.OPTIMIZERS == R.NAMES == ref_simulate.OPTIMIZERS == config.OPTIMIZERS
    assert expected.OPTIMIZERS == R.LINEAR == config.EXPECTED_OPTIMIZERS
    assert len({r.code for r in R.RULES}) == len(R.RULES)
    assert all(r.fused in R.FUSED for r in R.RULES)


@pytest.mark.parametrize("rule", R.NAMES)
def test_every_rule_sweeps_as_simulate_runs_it(rule):
    """A sweep of every row: its final weights are ``fd.simulate``'s on the same grid."""
    from fastdecay.sweep.config import parse_config

    options = dict(momentum=0.8, betas=[0.85, 0.99], weight_decay=0.01)
    cfg = parse_config({"run": {"steps": 30, "chunk_size": 2, "seed": 1},
                        "curvatures": {"values": [0.5, 2.0]},
                        "schedule": [{"kind": "cosine", "lr": 0.05, "total_steps": 30}],
                        "optimizer": {"kind": rule, **options, "noise": 0.1}})
    res = fd.sweep(cfg, progress=False)
    whole = fd.simulate(np.array([[0.5], [2.0]]), fd.cosine(0.05, 30), steps=30, optimizer=rule, noise=0.1, seed=1,
                        momentum=0.8, betas=(0.85, 0.99), weight_decay=0.01)
    np.testing.assert_array_equal(np.asarray(res.w).reshape(-1), np.asarray(whole.w).reshape(-1))
    assert res.optimizers == [rule]


@pytest.mark.parametrize("kernel", FUSED)
def test_each_cpu_kernel_takes_its_rows_options_in_the_tables_order(kernel):
    """The kernel's argument list is the table's: a rule whose kernel and row disagree fails here."""
    import inspect

    from fastdecay._cpu import rules

    names = list(inspect.signature(getattr(rules, f"{kernel}_kernel")).parameters)
    assert names[:10] == ["like", "like_state", "like_math", "addresses", "sizes", "first_block", "parts", "lr_table",
                          "wd_table", "step"]
    assert names[10].endswith("_table")  # the scheduled coefficient (momentum, beta1)
    assert names[11:-3] == list(R.FUSED[kernel].option_names)
    assert names[-3:] == ["compensated", "grad_scale", "found_inf"]
    assert all(kind in R.OPTION_TYPES for _, kind in R.FUSED[kernel].options)


@functools.lru_cache(maxsize=None)
def _mismatch_counter():
    from numba import njit

    from fastdecay._cpu.rules import root_over

    @njit(error_model="numpy")
    def count(roots, bs):
        bad = 0
        for b in bs:
            for a in roots:
                q, exact = root_over(a, b), a / b
                if q != exact and not (q != q and exact != exact):
                    bad += 1
        return bad

    return count


def _root_over_mismatches(roots, bs):
    """How many (root, b) of ``roots`` x ``bs`` give ``rules.root_over(root, b)`` other than
    ``root / b`` (NaN equal to NaN), in the arrays' dtype."""
    return _mismatch_counter()(roots, bs)


def test_adams_denominator_divides_bit_for_bit_without_a_division():
    """Adam's sqrt(v) / sqrt(1 - beta2^(t+1)) is computed by Markstein's correction
    (``rules.root_over``: a reciprocal hoisted out of the loop, two FMAs): the same bits as the
    division for every float32 significand of the root (one binade; the theorem scales by
    powers of two: 65,536 of them checked scaled to each end of the roots' range) against the
    bias corrections of the first 40 steps of four beta2 and random b in (0, 1], and in
    float64 for 200,000 random roots over the whole range of square roots against the same b;
    0, inf, NaN, the root of the smallest subnormal and of the largest number too, and roots
    whose quotient lies next to a midpoint between two floats (where rounding is hardest)."""
    rng = np.random.default_rng(12)
    corrections = [np.sqrt(1.0 - beta2 ** (t + 1.0)) for beta2 in (0.9, 0.999, 0.99999, 0.0) for t in range(40)]
    bs64 = np.unique(np.concatenate([corrections, rng.uniform(1e-4, 1.0, 40), [1.0, 0.5, np.nextafter(1.0, 0.0)]]))
    # float32: all 2**23 significands in [1, 2), and in a low and a high binade
    ones = (np.arange(1 << 23, dtype=np.uint32) + np.uint32(0x3F800000)).view(np.float32)
    bs32 = np.unique(bs64.astype(np.float32))
    assert _root_over_mismatches(ones, bs32) == 0
    for scale in (np.float32(2.0 ** -70), np.float32(2.0 ** 60)):
        assert _root_over_mismatches(rng.choice(ones, 1 << 16) * scale, bs32) == 0
    edges32 = np.array([0.0, np.inf, np.nan, np.sqrt(np.float32(1e-45)), np.sqrt(np.finfo(np.float32).max)],
                       dtype=np.float32)
    assert _root_over_mismatches(edges32, bs32) == 0
    # float64: random significands over the exponents a square root can have
    roots = np.ldexp(rng.uniform(1.0, 2.0, 200_000), rng.integers(-538, 512, 200_000))
    edges64 = np.array([0.0, np.inf, np.nan, np.sqrt(5e-324), np.sqrt(np.finfo(np.float64).max)])
    assert _root_over_mismatches(np.concatenate([roots, edges64]), bs64) == 0
    # the hardest roots: quotients next to the midpoints between two floats (ties to even)
    for dtype, bs in ((np.float32, bs32), (np.float64, bs64)):
        q1 = rng.uniform(1.0, 2.0, 20_000).astype(dtype)
        mid = (q1.astype(np.longdouble) + np.nextafter(q1, dtype(3)).astype(np.longdouble)) / 2
        for b in bs[::4]:
            near = (mid * np.longdouble(b)).astype(dtype)
            roots = np.concatenate([near, np.nextafter(near, dtype(0)), np.nextafter(near, dtype(9))])
            assert _root_over_mismatches(roots, np.array([b], dtype)) == 0
    # the check can fail: a plain multiply by the reciprocal differs from the division
    from numba import njit

    @njit(error_model="numpy")
    def by_reciprocal_mismatches(roots, b):
        y = np.float32(1.0) / b
        bad = 0
        for a in roots:
            bad += a * y != a / b
        return bad

    assert by_reciprocal_mismatches(ones[:1 << 16], np.float32(bs64[3])) > 0


def test_the_loops_that_multiply_adds_pace_ask_for_512_bit_vectors():
    """The simulations' and the expected dynamics' loops that multiply-adds pace in cache ask
    LLVM for 512-bit vectors (``intrinsics.prefer_wide_vectors``; 1.1-2x faster on Intel's
    AVX-512 cores): the SGD family's noiseless blocks of four steps, whose loop is the
    ``@overload``'s implementation, a function of its own (the attribute on its caller did not
    reach it), and its per-trajectory blocks; Lion's tile-step loop; the moments' loops of
    ``fd.expected_loss``. Compiled here, outside the kernel cache, on a build for AVX-512 their
    arithmetic is in zmm registers; the block's four GD steps are w (1 - lr lam)^4 as the oracle
    computes it."""
    import re

    from numba import njit

    from fastdecay._cpu import expected, rules
    from fastdecay._cpu.intrinsics import wide_vectors

    if not wide_vectors():
        pytest.skip("Numba builds for a CPU without AVX-512 here: the attribute asks for nothing it can give")
    wide_arithmetic = re.compile(r"v(fmadd|mul|add)\w*pd\s+[^\n]*zmm")

    def wide(kernel):
        return bool(wide_arithmetic.search("\n".join(kernel.inspect_asm().values())))

    @njit
    def block(w, buf, lam, step_scalars, use_momentum):
        rules.sgd_block_if_noiseless(None, w, buf, lam, step_scalars, 0, 1, use_momentum, False, False)

    n = 203
    lam = np.linspace(0.01, 1.0, n)
    w = np.ones(n)
    step_scalars = np.zeros((4, 4))
    step_scalars[:, 0], step_scalars[:, 2] = 0.1, 1.0  # lr, buffer scale; no weight decay, no momentum
    block(w, np.zeros(n), lam, step_scalars, False)
    np.testing.assert_allclose(w, (1.0 - 0.1 * lam) ** 4, rtol=1e-14)
    assert wide(block)

    per_trajectory = njit(rules._sgd_per_trajectory_block.py_func)
    per_trajectory(w, np.zeros(n), lam, np.full(n, 0.1), np.full(n, 0.99), step_scalars, 0, False, False, False)
    assert wide(per_trajectory)

    lion = njit(rules._lion_coords.py_func)
    lion(w, np.zeros(n), lam, rules.lion_scalars(0.01, 0.0, 0.9, 0.99, False), False, None, 0.0, False)
    assert wide(lion)

    coef = np.zeros((3, expected.N_COEF))
    coef[:] = 1.0
    partial = np.zeros(1)
    moments = [np.ones(n) for _ in range(5)]
    gd = njit(expected._gd_steps.py_func)
    gd(moments[0], moments[1], lam, lam, 1.0, coef, 3, 0, 0, 0, partial)
    momentum = njit(expected._momentum_steps.py_func)
    momentum(*moments, lam, lam, 1.0, coef, 3, 0, 0, 0, partial)
    assert wide(gd) and wide(momentum)
