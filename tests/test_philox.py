"""Philox4x32-10 against the published Random123 known-answer vectors, and the
normals drawn from it: the same bits from Numba, from a plain-Python evaluation
of the same operations, from the vectorised pair loop and inside the simulation
kernel on every path; within an ulp of the true log and cos (the sine is the
cosine a quarter turn on, exactly); close to the libm Box-Muller; standard
normal, the two draws of a pair independent."""

import decimal
import math
import pathlib
import re
import shutil
import subprocess

import numpy as np
import pytest

import fastdecay as fd
from fastdecay._cpu import philox
from fastdecay._cpu.philox import (cos_two_pi, fill_normal_pairs, fill_normals, log_unit, normal, philox4x32_10,
                                   sincos_two_pi)
from fastdecay.reference import philox4x32_10 as ref_philox
from fastdecay.reference import philox_normal as ref_normal

KERNELS = pathlib.Path(__file__).resolve().parents[1] / "kernels"

# Random123 1.14, examples/kat_vectors: "philox4x32 10" lines, counter[4] key[2] -> output[4]
KAT = [
    ((0x00000000, 0x00000000, 0x00000000, 0x00000000), (0x00000000, 0x00000000),
     (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF),
     (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("counter, key, expected", KAT)
def test_known_answers_numba(counter, key, expected):
    assert tuple(int(x) for x in philox4x32_10(*counter, *key)) == expected


@pytest.mark.parametrize("counter, key, expected", KAT)
def test_known_answers_reference(counter, key, expected):
    assert ref_philox(counter, key) == expected


def test_numba_matches_reference_on_random_counters():
    rng = np.random.default_rng(1)
    for _ in range(200):
        c = [int(x) for x in rng.integers(0, 2**32, 4)]
        k = [int(x) for x in rng.integers(0, 2**32, 2)]
        assert tuple(int(x) for x in philox4x32_10(*c, *k)) == ref_philox(c, k)


def python_normal(seed, trajectory, step, coordinate):
    """The normal by CPython's float arithmetic (one rounding per operation, nothing
    fused): the reference's Philox words of the pair counter (step >> 1), then the
    Python bodies of log_unit and sincos_two_pi (``.py_func``, not compiled): the
    cosine at even steps, the sine at odd ones."""
    x0, x1, x2, x3 = ref_philox((trajectory & 0xFFFFFFFF, trajectory >> 32, step >> 1, coordinate),
                                (seed & 0xFFFFFFFF, seed >> 32))
    k = ((x0 << 21) | (x1 >> 11)) + 1
    j = (x2 << 21) | (x3 >> 11)
    return math.sqrt(-2.0 * log_unit.py_func(k)) * sincos_two_pi.py_func(j)[step & 1]


@pytest.mark.parametrize("seed, trajectory", [(0, 0), (12345, 2**33 + 7), (2**64 - 1, 2**40)])
def test_normals_equal_a_plain_python_evaluation_bit_for_bit(seed, trajectory):
    for step in (0, 1, 2, 999, 1000, 2**32 - 2, 2**32 - 1):
        for coordinate in range(6):
            got = normal(np.uint64(seed), np.uint64(trajectory), step, coordinate)
            assert got == python_normal(seed, trajectory, step, coordinate)


def test_log_unit_and_cos_two_pi_python_bodies_equal_numba_on_edges_and_random():
    """(Compiled with fastmath={"contract"}, about 0.5% of the logs and 0.7% of the
    cosines would come out different: this catches a fused multiply-add.)"""
    rng = np.random.default_rng(5)
    ks = [1, 2, 3, 2**52 - 1, 2**52, 2**52 + 1, 2**53 - 1, 2**53] + [int(k) for k in rng.integers(1, 2**53, 3000)]
    ks += [int(k) for k in rng.integers(1, 2**20, 100)] + [2**e + d for e in range(1, 53) for d in (-1, 0, 1)]
    js = [0, 1, 2**50 - 1, 2**50, 2**51 - 1, 2**51, 2**51 + 1, 2**52, 3 * 2**51, 2**53 - 1]
    js += [int(j) for j in rng.integers(0, 2**53, 3000)]
    for k in ks:
        assert log_unit(k) == log_unit.py_func(k), k
    for j in js:
        assert cos_two_pi(j) == cos_two_pi.py_func(j), j


def test_sine_is_the_cosine_a_quarter_turn_on_bit_for_bit():
    """sincos_two_pi(j) = (cos_two_pi(j), cos_two_pi((j - 2**51) mod 2**53)), and the
    compiled function equals its Python body, on edges and random arguments."""
    rng = np.random.default_rng(6)
    js = [0, 1, 2**50 - 1, 2**50, 2**50 + 1, 2**51 - 1, 2**51, 2**51 + 1, 2**52, 3 * 2**51, 2**53 - 1]
    js += [int(j) for j in rng.integers(0, 2**53, 3000)]
    js += [int(q) * 2**50 + int(e) for q in range(8) for e in rng.integers(-2**20, 2**20, 50) if 0 <= q * 2**50 + e < 2**53]
    for j in js:
        c, s = sincos_two_pi(j)
        assert (c, s) == sincos_two_pi.py_func(j), j
        assert c == cos_two_pi(j) and s == cos_two_pi((j - 2**51) % 2**53), j
    assert sincos_two_pi(2**50) == (math.sqrt(0.5), math.sqrt(0.5))   # an eighth of a turn
    assert sincos_two_pi(3 * 2**51) == (0.0, -1.0)


@pytest.mark.parametrize("d", [1, 3, 700])
def test_vector_pair_loop_equals_scalar_normals(d):
    """fill_normal_pairs (the loops the simulations run, vectorised) gives ``normal`` of
    the even and the odd step of the pair, bit for bit (float64; a float32 run rounds
    each draw once where its gradient reads it, tested through the simulations below)."""
    dtype = np.float64
    from fastdecay._cpu.simulate import noise_lanes

    lane_trajectory, lane_coordinate = noise_lanes(d)
    lanes = lane_trajectory.shape[0] - 1  # an odd count: the vector loop's remainder too
    seed, first, pair = np.uint64(2**63 + 11), np.uint64(2**32 - 3), np.uint64(2**31 - 1)
    even, odd = np.empty(lanes, dtype), np.empty(lanes, dtype)
    fill_normal_pairs(seed, first, lane_trajectory[:lanes], lane_coordinate[:lanes], pair, even, odd)
    for j in range(0, lanes, 1 if d == 1 else 7):
        trajectory, coordinate = int(first) + int(lane_trajectory[j]), int(lane_coordinate[j])
        assert even[j] == dtype(normal(seed, trajectory, 2 * int(pair), coordinate)), j
        assert odd[j] == dtype(normal(seed, trajectory, 2 * int(pair) + 1, coordinate)), j


def test_pair_loop_is_vectorised():
    """The draws are worth little unless the loop runs across SIMD lanes: compiled for
    this CPU (a fresh, uncached copy, so its assembly can be read), the pair loop holds
    packed 64-bit multiplies and packed divisions (SSE, AVX2 or AVX-512 registers)."""
    from numba import njit

    from fastdecay._cpu.simulate import noise_lanes

    fresh = njit(error_model="numpy")(fill_normal_pairs.py_func)
    lane_trajectory, lane_coordinate = noise_lanes(1)
    even = np.empty(lane_trajectory.shape[0])
    fresh(np.uint64(1), np.uint64(0), lane_trajectory, lane_coordinate, np.uint64(0), even, even.copy())
    asm = "\n".join(fresh.inspect_asm().values())
    assert re.search(r"pmuludq\s+%[xyz]mm", asm), "Philox multiplies are not vectorised"
    assert re.search(r"divpd\s+%[xyz]mm", asm), "the logarithm's division is not vectorised"


def test_fused_product_error_equals_dekkers_exact_product():
    """sincos_two_pi forms the error of x = |t| PIO2_HI with one fused multiply-add;
    kernels/philox.cuh with Dekker's product on |t| = th + tl (25 and 26 bits) and
    PIO2_HI = PIO2_A + PIO2_B (27 and 20 bits). Both are exact, hence equal: checked
    against exact rationals on edges (every power of two, both sides of the 2**26
    split) and random arguments, compiled and in Python."""
    from fractions import Fraction

    from numba import njit

    hi51, a_, b_, two_m51 = philox._PIO2_HI_51, philox._PIO2_A, philox._PIO2_B, philox._TWO_M51

    @njit(error_model="numpy")
    def both(rs, fused, dekker):
        for i in range(rs.shape[0]):
            a = rs[i]
            x = float(a) * hi51
            fused[i] = philox._fma(float(a), hi51, -x)
            ah = (a >> 26) << 26
            th, tl = float(ah) * two_m51, float(a - ah) * two_m51
            dekker[i] = (((th * a_ - x) + th * b_) + tl * a_) + tl * b_

    rng = np.random.default_rng(8)
    rs = [0, 1, 2, 2**50 - 1, 2**50] + [2**e + d for e in range(1, 50) for d in (-1, 0, 1)]
    rs += [2**26 * m + d for m in (1, 2, 3, 2**24 - 1, 2**24) for d in range(-3, 4)]
    rs = np.array(rs + [int(r) for r in rng.integers(0, 2**50, 200_000)], dtype=np.int64)
    rs[-50_000:] >>= rng.integers(0, 50, 50_000)      # every magnitude
    fused, dekker = np.empty(rs.shape), np.empty(rs.shape)
    both(rs, fused, dekker)
    np.testing.assert_array_equal(fused, dekker)
    for i in range(0, rs.size, 97):
        a = int(rs[i])
        x = float(a) * hi51
        exact = Fraction(a) * Fraction(hi51) - Fraction(x)
        assert Fraction(fused[i]) == exact and philox._fma(float(a), hi51, -x) == fused[i], a


def test_integer_to_float_by_halves_is_exact():
    """The AVX2 form of the exact integer-to-float64 conversion (compiled where the CPU has
    no packed 64-bit conversion; tested here on any CPU) equals float(i) up to 2**53."""
    from numba import njit

    @njit
    def convert(xs, out):
        for i in range(xs.shape[0]):
            out[i] = philox._float_by_halves(xs[i])

    rng = np.random.default_rng(9)
    xs = [0, 1, 2**21, 2**32 - 1, 2**32, 2**32 + 1, 2**52 - 1, 2**52, 2**52 + 1, 2**53 - 1, 2**53]
    xs = np.array(xs + [2**e + d for e in range(1, 53) for d in (-1, 1)] + list(rng.integers(0, 2**53, 100_000)),
                  dtype=np.uint64)
    out = np.empty(xs.shape)
    convert(xs, out)
    assert [float(x) for x in out] == [float(int(x)) for x in xs]
    assert philox._exact_float(2**53) == 2.0**53


def test_exact_values():
    assert log_unit(2**53) == 0.0                   # u1 = 1
    assert log_unit(2**52) == math.log(0.5)         # -ln 2, correctly rounded
    assert log_unit(1) == -53 * math.log(2.0)       # the smallest u1, 2**-53
    assert cos_two_pi(0) == 1.0
    assert cos_two_pi(2**52) == -1.0                # half a turn
    assert cos_two_pi(2**51) == 0.0 and cos_two_pi(3 * 2**51) == 0.0
    assert cos_two_pi(2**50) == math.sqrt(0.5)      # an eighth of a turn, correctly rounded


def _ulps(got, want):
    """|got - want| in units in the last place of got (want in long double)."""
    return np.abs((got.astype(np.longdouble) - want) / np.spacing(np.abs(got)).astype(np.longdouble))


@pytest.mark.skipif(np.finfo(np.longdouble).nmant < 63, reason="needs an extended long double for the reference")
def test_log_unit_and_cos_two_pi_within_an_ulp():
    """Against long double references on random arguments, arguments near 1, tiny
    ones, powers of two, and angles near the quarter and eighth turns."""
    ld = np.longdouble
    rng = np.random.default_rng(2)
    n = 300_000
    ks = rng.integers(1, 2**53, n, dtype=np.int64)
    ks[:20_000] = rng.integers(1, 2**30, 20_000)
    ks[20_000:40_000] = 2**53 - rng.integers(1, 2**30, 20_000)
    e = rng.integers(1, 53, 20_000)
    ks[40_000:60_000] = np.maximum((np.int64(1) << e) + rng.integers(-2, 3, 20_000), 1)
    logs = np.array([log_unit(k) for k in ks[:2000]])  # the compiled function, one call each
    logs = np.concatenate([logs, _vector(log_unit, ks[2000:])])
    want_log = np.log(ks.astype(ld) * ld(2.0) ** -53)
    assert _ulps(logs, want_log).max() < 1.0

    js = rng.integers(0, 2**53, n, dtype=np.int64)
    quarter = rng.integers(0, 5, 40_000) << 51
    js[:20_000] = np.clip(quarter[:20_000] + rng.integers(-2**24, 2**24, 20_000), 0, 2**53 - 1)
    js[20_000:40_000] = np.clip(quarter[20_000:] + 2**50 + rng.integers(-2**24, 2**24, 20_000), 0, 2**53 - 1)
    coss = _vector(cos_two_pi, js)
    # exact integer reduction to an eighth of a turn, then cos or sin in long double
    pi = ld("3.14159265358979323846264338327950288")
    quadrant = (js + 2**50) >> 51
    theta = pi / 2 * ((js - (quadrant << 51)).astype(ld) * ld(2.0) ** -51)
    want_cos = np.where(quadrant % 2 == 0, np.cos(theta), np.sin(theta))
    want_cos *= np.where((quadrant % 4 == 1) | (quadrant % 4 == 2), -1, 1)
    assert np.all(coss != 0)
    assert _ulps(coss, want_cos).max() < 1.0


def _vector(fn, args):
    from numba import njit

    @njit
    def apply(a, out):
        for i in range(a.shape[0]):
            out[i] = fn(a[i])

    out = np.empty(args.shape[0])
    apply(args, out)
    return out


def test_normals_close_to_the_libm_box_muller():
    """fastdecay.reference.philox_normal computes sqrt(-2 ln u1) cos(2 pi u2) with the
    math library. Where cos(2 pi u2) is near zero the libm form loses relative accuracy
    (2 pi u2 is rounded before the cos), so the bound is absolute: |xi| <= 8.6."""
    rng = np.random.default_rng(4)
    worst = 0.0
    for seed in (0, 7, 2**64 - 1):
        out = np.empty((2000, 3))
        first = int(rng.integers(0, 2**63))
        fill_normals(np.uint64(seed), np.uint64(first), np.uint32(123), 3, out)
        want = np.array([[ref_normal(seed, first + i, 123, c) for c in range(3)] for i in range(2000)])
        worst = max(worst, float(np.max(np.abs(out - want) / np.maximum(1.0, np.abs(want)))))
    assert worst < 1e-14


def test_normals_are_standard_normal():
    out = np.empty((200_000, 2))
    fill_normals(np.uint64(3), np.uint64(0), np.uint32(11), 2, out)
    assert np.all(np.isfinite(out))
    # mean and variance within ~5 standard errors; a tail and a symmetry check
    assert abs(out.mean()) < 5 / np.sqrt(out.size)
    assert abs(out.var() - 1.0) < 5 * np.sqrt(2 / out.size)
    assert abs(np.mean(np.abs(out) > 1.96) - 0.05) < 0.003
    # different steps, seeds and coordinates give uncorrelated streams
    other = np.empty_like(out)
    fill_normals(np.uint64(4), np.uint64(0), np.uint32(11), 2, other)
    assert abs(np.corrcoef(out[:, 0], other[:, 0])[0, 1]) < 0.02
    assert abs(np.corrcoef(out[:, 0], out[:, 1])[0, 1]) < 0.02


def test_offset_gives_the_same_numbers():
    whole = np.empty((50, 3))
    part = np.empty((20, 3))
    fill_normals(np.uint64(9), np.uint64(100), np.uint32(4), 3, whole)
    fill_normals(np.uint64(9), np.uint64(130), np.uint32(4), 3, part)
    assert np.array_equal(whole[30:], part)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("d, every", [(1, None), (3, None), (3, 2)])
def test_normals_inside_the_simulation_kernel_equal_the_standalone_ones(d, every, dtype):
    """The simulation inlines ``normal`` next to update rules with explicit fused
    multiply-adds; the normal's own operations must stay unfused. Zero
    curvature, w0 = 0 and a rate that is 0 before step T and 1 from it: after
    T + 1 steps of GD, w = -noise draw of step T, exactly."""
    n, seed, offset = 301, 2**40 + 3, 12345
    for t in (0, 5, 1000):
        res = fd.simulate(np.zeros((n, d)), fd.piecewise([t], [0.0, 1.0]), steps=t + 1, noise=1.0, w0=0.0,
                          seed=seed, trajectory_offset=offset, every=every, dtype=dtype)
        want = np.empty((n, d))
        fill_normals(np.uint64(seed), np.uint64(offset), np.uint32(t), d, want)
        np.testing.assert_array_equal(-res.w, want.astype(dtype))


def _draws_reference(optimizer, n, d, steps, seed, offset, dtype):
    """w after ``steps`` steps on zero curvature from w0 = 0 with rate 1, noise 1 and
    the standalone normals: GD, heavy ball / Nesterov / lr-in-buffer with momentum 0.5
    (every product exact, so no multiply-add can round differently) and Adam /
    AdamW with betas (0.5, 0.75), in the run's dtype."""
    w, b, v = (np.zeros((n, d), dtype) for _ in range(3))
    draw = np.empty((n, d))
    for t in range(steps):
        fill_normals(np.uint64(seed), np.uint64(offset), np.uint32(t), d, draw)
        g = draw.astype(dtype)
        if optimizer == "gd":
            w = w - g
        elif optimizer in ("momentum", "momentum_lr_in_buffer", "nesterov"):
            b = g if t == 0 else dtype(0.5) * b + g
            w = w - (g + dtype(0.5) * b if optimizer == "nesterov" else b)
        else:
            b = dtype(0.5) * g if t == 0 else b + dtype(0.5) * (g - b)
            v = dtype(0.25) * g * g if t == 0 else v * dtype(0.75) + dtype(0.25) * g * g
            denom = np.sqrt(v) / dtype(math.sqrt(1 - 0.75 ** (t + 1))) + dtype(1e-8)
            w = w + dtype(-1.0 / (1 - 0.5 ** (t + 1))) * b / denom
    return w


OPTIMIZERS = ["gd", "momentum", "nesterov", "momentum_lr_in_buffer", "adam", "adamw"]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("rates", ["shared", "per-trajectory", "per-trajectory-weight-decay"])
@pytest.mark.parametrize("d, every, chunk_steps", [(1, None, None), (1, 2, 3), (3, None, 3), (3, 2, None)])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_noisy_runs_draw_the_standalone_normals_on_every_path(optimizer, d, every, chunk_steps, rates, dtype):
    """Each kernel path (shared-rate vector loops over a tile's elements, per-trajectory
    loops, the generic per-trajectory loops of recording with d > 1 and of scheduled
    weight decay; chunks starting at an odd step, which redraw their pair) adds
    exactly the draws of ``philox.normal``: bit for bit where every product is exact
    (GD and the momentum family), to rounding for Adam's square root and division."""
    n, steps, seed, offset = 517, 7, 2**40 + 3, 2**32 - 5   # 517: a partial last tile
    rate = fd.constant(1.0) if rates == "shared" else fd.constant(np.ones(n))
    weight_decay = fd.constant(np.zeros(n)) if rates == "per-trajectory-weight-decay" else 0.0
    res = fd.simulate(np.zeros((n, d)), rate, steps=steps, optimizer=optimizer, momentum=0.5, betas=(0.5, 0.75),
                      weight_decay=weight_decay, noise=1.0, w0=0.0, seed=seed, trajectory_offset=offset, every=every,
                      chunk_steps=chunk_steps, dtype=dtype)
    want = _draws_reference(optimizer, n, d, steps, seed, offset, dtype)
    if optimizer in ("adam", "adamw"):
        rtol, atol = (1e-13, 1e-15) if dtype == np.float64 else (2e-6, 1e-6)   # a wrong draw moves w by ~1
        np.testing.assert_allclose(res.w, want, rtol=rtol, atol=atol)
    else:
        np.testing.assert_array_equal(res.w, want)



@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n, d", [(1, 2500), (3, 1500), (2, 1024), (5, 1025), (7, 300)])
@pytest.mark.parametrize("optimizer", ["gd", "nesterov", "adamw"])
def test_tiles_that_start_inside_a_trajectory_draw_its_coordinates_normals(optimizer, n, d, dtype):
    """Under shared rates the loops run over tiles of 1,024 elements whatever d, so a tile
    may start inside a trajectory and run into the next one (d = 1,500: the second tile
    holds coordinates 1,024 .. 1,499 of trajectory 0 and 0 .. 547 of trajectory 1). Each
    element still adds the draw of its own trajectory and coordinate, in one chunk and in
    chunks starting at an odd step, which redraw their pair."""
    steps, seed, offset = 5, 2**40 + 3, 2**32 - 5
    want = _draws_reference(optimizer, n, d, steps, seed, offset, dtype)
    for chunk_steps in (None, 3):
        res = fd.simulate(np.zeros((n, d)), fd.constant(1.0), steps=steps, optimizer=optimizer, momentum=0.5,
                          betas=(0.5, 0.75), noise=1.0, w0=0.0, seed=seed, trajectory_offset=offset,
                          chunk_steps=chunk_steps, dtype=dtype)
        if optimizer == "adamw":
            rtol, atol = (1e-13, 1e-15) if dtype == np.float64 else (2e-6, 1e-6)   # a wrong draw moves w by ~1
            np.testing.assert_allclose(res.w, want, rtol=rtol, atol=atol)
        else:
            np.testing.assert_array_equal(res.w, want)

def test_constants_of_the_cuda_header_equal_the_python_ones():
    """kernels/philox.cuh spells every constant as the same hex literal."""
    source = (KERNELS / "philox.cuh").read_text()
    found = dict(re.findall(r"\b([A-Z][A-Z0-9_]*) = (-?0x[0-9a-f.]+p[-+]?\d+)", source))
    names = ["LN2_HI", "LN2_LO"] + [f"LG{i}" for i in range(1, 8)] + [f"S{i}" for i in range(1, 7)]
    names += [f"C{i}" for i in range(1, 7)] + ["PIO2_HI", "PIO2_LO", "PIO2_A", "PIO2_B", "TWO_M51", "TWO_M52",
                                               "TWO_M53"]
    assert set(found) == set(names)
    for name in names:
        assert float.fromhex(found[name]) == getattr(philox, "_" + name), name


def test_constants_are_fdlibms_and_split_pi_exactly():
    # fdlibm's decimal spellings (e_log.c, k_sin.c, k_cos.c)
    assert philox._LN2_HI == 6.93147180369123816490e-01 and philox._LN2_LO == 1.90821492927058770002e-10
    assert philox._LG1 == 6.666666666666735130e-01 and philox._LG7 == 1.479819860511658591e-01
    assert philox._S1 == -1.66666666666666324348e-01 and philox._S6 == 1.58969099521155010221e-10
    assert philox._C1 == 4.16666666666666019037e-02 and philox._C6 == -1.13596475577881948265e-11
    # pi/2 = HI + LO to ~2**-107; HI = A + B exactly, A with 27 significant bits, B with 20
    ctx = decimal.Context(prec=60)
    half_pi = decimal.Decimal("1.57079632679489661923132169163975144209858469968755291")
    err = ctx.subtract(ctx.add(decimal.Decimal(philox._PIO2_HI), decimal.Decimal(philox._PIO2_LO)), half_pi)
    assert abs(err) < decimal.Decimal(2) ** -106
    assert philox._PIO2_A + philox._PIO2_B == philox._PIO2_HI

    def significant_bits(x):
        m = abs(math.frexp(x)[0])
        bits = 0
        while m != int(m):
            m *= 2
            bits += 1
        return bits

    assert significant_bits(philox._PIO2_A) == 27 and significant_bits(philox._PIO2_B) <= 26


NVCC = shutil.which("nvcc") or next(
    (str(p) for p in [pathlib.Path("/usr/local/cuda/bin/nvcc")] if p.exists()), None)


@pytest.mark.skipif(NVCC is None, reason="nvcc not found: the PTX check needs the CUDA toolkit")
def test_device_build_has_no_fused_or_unrounded_float64_operations(tmp_path):
    """No GPU here, so the device build's bits are argued from its PTX: compiled with
    fused multiply-add allowed (--fmad=true, nvcc's default), the normal still has no
    fma and every float64 add, sub, mul, div and sqrt carries .rn (PTX never contracts
    those), so each is one IEEE-754 correctly rounded operation, as on the CPU. And
    no call: nothing from libdevice."""
    (tmp_path / "k.cu").write_text(
        '#include "philox.cuh"\n'
        'extern "C" __global__ void normals(unsigned long long seed, double* out, int n) {\n'
        '    int i = blockIdx.x * blockDim.x + threadIdx.x;\n'
        '    if (i < n) out[i] = fastdecay::philox_normal(seed, (unsigned long long)i, 3u, (unsigned)i);\n'
        '}\n')
    run = subprocess.run([NVCC, "--ptx", "-arch=compute_80", "-std=c++17", "--fmad=true", f"-I{KERNELS}", "k.cu",
                          "-o", "k.ptx"], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    ops = re.findall(r"^\s*([a-z]+(?:\.[a-z0-9]+)*)", (tmp_path / "k.ptx").read_text(), re.M)
    f64 = [op for op in ops if op.endswith(".f64") and op.split(".")[0] in ("add", "sub", "mul", "div", "sqrt",
                                                                           "fma", "mad")]
    assert len(f64) > 60  # the whole transform is there
    assert all(op.split(".")[0] not in ("fma", "mad") and ".rn." in op for op in f64), sorted(set(f64))
    assert not any(op.split(".")[0] == "call" for op in ops)
