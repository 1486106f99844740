"""Philox4x32-10 against the published Random123 known-answer vectors, and the
normals drawn from it: the same bits from Numba, from the reference's plain-Python
evaluation of the same operations, from the vectorised quad loop and inside the simulation
kernel on every path; close to the float64 libm Box-Muller of the same words;
standard normal, the four draws of a counter independent."""

import math
import pathlib
import re
import shutil
import subprocess

import numpy as np
import pytest

import fastdecay as fd
from fastdecay._cpu import philox
from fastdecay._cpu.philox import fill_normal_quads, fill_normals, log_u1, normal, philox4x32_10, sincos_turn
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


def libm_normal(seed, trajectory, step, coordinate):
    """The Box-Muller of the same Philox words in float64 with the math library."""
    words = ref_philox((trajectory & 0xFFFFFFFF, trajectory >> 32, step >> 2, coordinate),
                       (seed & 0xFFFFFFFF, seed >> 32))
    a, b = words[2:] if step & 2 else words[:2]
    u1 = float(np.float32(a + 1)) * 2.0**-32
    angle = 2.0 * math.pi * (b * 2.0**-32)
    return math.sqrt(-2.0 * math.log(u1)) * (math.sin(angle) if step & 1 else math.cos(angle))


@pytest.mark.parametrize("seed, trajectory", [(0, 0), (12345, 2**33 + 7), (2**64 - 1, 2**40)])
def test_normals_equal_the_reference_bit_for_bit(seed, trajectory):
    """fastdecay.reference.philox_normal evaluates the definition one NumPy float32
    operation at a time, with exact-rational fused multiply-adds."""
    for step in (0, 1, 2, 3, 4, 999, 1000, 2**32 - 2, 2**32 - 1):
        for coordinate in range(6):
            got = normal(np.uint64(seed), np.uint64(trajectory), step, coordinate)
            assert got == ref_normal(seed, trajectory, step, coordinate), (step, coordinate)


def _words():
    """Philox words on the edges of the radius (a + 1 near powers of two, where a + 1
    is rounded to 24 bits, the extremes) and the angle (near every eighth of a turn),
    and random ones."""
    rng = np.random.default_rng(5)
    edges = [0, 1, 2, 2**24 - 2, 2**24 - 1, 2**24, 2**32 - 2**8, 2**32 - 129, 2**32 - 128, 2**32 - 2, 2**32 - 1]
    edges += [2**e + d for e in range(1, 32) for d in (-2, -1, 0, 1, 2)]
    eighths = (rng.integers(0, 8, 2000).astype(np.int64) << 29) + rng.integers(-2**12, 2**12, 2000)
    words = np.concatenate([edges, rng.integers(0, 2**32, 3000), eighths % 2**32])
    return [int(w) for w in np.clip(words, 0, 2**32 - 1)]


def test_log_u1_and_sincos_turn_python_bodies_equal_numba_on_edges_and_random():
    """(Compiled with fastmath={"contract"}, a multiply and an add would fuse where the
    definition rounds twice: this catches it, and a float64 constant widening the
    arithmetic.)"""
    for a in _words():
        got, want = np.float32(log_u1(a)), philox.log_u1.py_func(a)
        assert isinstance(want, np.float32) and got.view(np.uint32) == want.view(np.uint32), a
        got, want = sincos_turn(a), sincos_turn.py_func(a)
        assert all(isinstance(w, np.float32) for w in want)
        assert [np.float32(g).view(np.uint32) for g in got] == [w.view(np.uint32) for w in want], a


def test_fused_multiply_add_twin_rounds_once():
    """The Python twin of the fused multiply-add (exact rationals, one rounding to
    float32, ties to even) against cases a double rounding gets wrong, and Numba's."""
    from numba import njit

    eps = np.float32(2.0**-23)
    one = np.float32(1.0)
    assert philox._fma(one + eps, one - eps, np.float32(0.0)) == one           # 1 - 2**-46 rounds to 1
    assert philox._fma(one + eps, one + eps, -one) == np.float32(2.0**-22)     # 2**-22 + 2**-46: a tie, to even
    assert philox._fma(np.float32(2.0**-24), one, one) == one                 # a tie: to even
    assert philox._fma(np.float32(3 * 2.0**-24), one, one) == one + 2 * eps    # a tie: to even, upwards
    assert philox._fma(np.float32(2.0**-140), one, np.float32(0.0)) == np.float32(2.0**-140)  # subnormal

    @njit
    def compiled(a, b, c):
        return philox._fma(a, b, c)

    rng = np.random.default_rng(3)
    for _ in range(3000):
        a, b, c = (np.float32(x) for x in rng.standard_normal(3) * 10.0 ** rng.integers(-8, 8, 3))
        got = np.float32(compiled(a, b, c))
        assert got.view(np.uint32) == philox._fma(a, b, c).view(np.uint32), (a, b, c)


@pytest.mark.parametrize("d", [1, 3, 700])
def test_vector_quad_loop_equals_scalar_normals(d):
    """fill_normal_quads (the loops the simulations run, vectorised) gives ``normal`` of
    the four steps of the counter, bit for bit."""
    from fastdecay._cpu.simulate import noise_lanes

    lane_trajectory, lane_coordinate = noise_lanes(d)
    lanes = lane_trajectory.shape[0] - 1  # an odd count: the vector loop's remainder too
    seed, first, quad = np.uint64(2**63 + 11), np.uint64(2**32 - 3), np.uint64(2**30 - 1)
    zs = [np.empty(lanes, np.float32) for _ in range(4)]
    fill_normal_quads(seed, first, lane_trajectory[:lanes], lane_coordinate[:lanes], quad, *zs)
    for j in range(0, lanes, 1 if d == 1 else 7):
        trajectory, coordinate = int(first) + int(lane_trajectory[j]), int(lane_coordinate[j])
        for u in range(4):
            want = np.float32(normal(seed, trajectory, 4 * int(quad) + u, coordinate))
            assert zs[u][j].view(np.uint32) == want.view(np.uint32), (j, u)


def test_quad_loop_is_vectorised():
    """The draws are worth little unless the loop runs across SIMD lanes: compiled for
    this CPU (a fresh, uncached copy, so its assembly can be read), the quad loop holds
    packed 64-bit multiplies and packed float32 divisions and square roots (SSE, AVX2
    or AVX-512 registers)."""
    from numba import njit

    from fastdecay._cpu.simulate import noise_lanes

    fresh = njit(error_model="numpy")(fill_normal_quads.py_func)
    lane_trajectory, lane_coordinate = noise_lanes(1)
    zs = [np.empty(lane_trajectory.shape[0], np.float32) for _ in range(4)]
    fresh(np.uint64(1), np.uint64(0), lane_trajectory, lane_coordinate, np.uint64(0), *zs)
    asm = "\n".join(fresh.inspect_asm().values())
    assert re.search(r"pmuludq\s+%[xyz]mm", asm), "Philox multiplies are not vectorised"
    assert re.search(r"divps\s+%[xyz]mm", asm), "the logarithm's division is not vectorised"
    assert re.search(r"sqrtps\s+%[xyz]mm", asm), "the radius's square root is not vectorised"


def test_exact_values():
    assert log_u1(2**32 - 1) == 0.0                         # u1 = 1
    assert log_u1(2**32 - 100) == 0.0                       # a + 1 rounds to 2**32: u1 = 1
    assert np.float32(log_u1(2**31 - 1)) == np.float32(-math.log(2.0))   # -ln 2, correctly rounded
    assert log_u1(0) == np.float32(-32 * math.log(2.0))      # the smallest u1, 2**-32
    assert sincos_turn(0) == (1.0, 0.0)
    assert sincos_turn(2**31) == (-1.0, 0.0)                # half a turn (sin: -(-0.0))
    assert sincos_turn(2**30) == (0.0, 1.0) and sincos_turn(3 * 2**30) == (0.0, -1.0)
    assert sincos_turn(2**29)[0] == np.float32(math.sqrt(0.5))   # an eighth of a turn, correctly rounded


def test_accuracy_against_float64_libm():
    """log_u1, the radius, the sine and the cosine against float64 libm on 2e6 random
    words and the edges: the radius within 1.1 float32 ulps, cos and sin within 1.3e-7
    absolute, the normals within 2.5e-7 absolute where |xi| <= 1 and 3.6 ulps of |xi|
    beyond (the measured figures, rounded up)."""
    from numba import njit

    @njit
    def transform(a, b, r, c, s):
        for i in range(a.shape[0]):
            r[i] = philox.radius(a[i])
            c[i], s[i] = sincos_turn(b[i])

    rng = np.random.default_rng(2)
    n = 2_000_000
    a = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    b = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    edges = np.array(_words(), dtype=np.uint32)
    a[:edges.size] = edges
    b[-edges.size:] = edges
    r, c, s = (np.empty(n, np.float32) for _ in range(3))
    transform(a, b, r, c, s)
    u1 = (a.astype(np.float64) + 1).astype(np.float32).astype(np.float64) * 2.0**-32
    want_r = np.sqrt(-2.0 * np.log(u1))
    angle = 2.0 * np.pi * (b.astype(np.float64) * 2.0**-32)
    want_c, want_s = np.cos(angle), np.sin(angle)

    def ulps(got, want):
        return np.abs(got.astype(np.float64) - want) / np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)

    nonzero = want_r > 0
    assert ulps(r[nonzero], want_r[nonzero]).max() < 1.1
    assert np.all(r[~nonzero] == 0)
    assert np.abs(c - want_c).max() < 1.3e-7 and np.abs(s - want_s).max() < 1.3e-7
    for got, want in ((r * c, want_r * want_c), (r * s, want_r * want_s)):
        small = np.abs(want) <= 1.0
        assert np.abs(got[small] - want[small]).max() < 2.5e-7
        assert ulps(got[~small], want[~small]).max() < 3.6
    assert np.abs(r * c).max() <= math.sqrt(64 * math.log(2.0)) + 1e-6


def test_normals_close_to_the_libm_box_muller():
    """sqrt(-2 ln u1) cos(2 pi u2) in float64 with the math library, from the same words:
    within 5e-7 max(1, |xi|)."""
    rng = np.random.default_rng(4)
    worst = 0.0
    for seed in (0, 7, 2**64 - 1):
        first = int(rng.integers(0, 2**63))
        for step in (120, 121, 122, 123):
            out = np.empty((500, 3), dtype=np.float32)
            fill_normals(np.uint64(seed), np.uint64(first), np.uint32(step), 3, out)
            want = np.array([[libm_normal(seed, first + i, step, c) for c in range(3)] for i in range(500)])
            worst = max(worst, float(np.max(np.abs(out - want) / np.maximum(1.0, np.abs(want)))))
    assert worst < 5e-7


def test_normals_are_standard_normal():
    out = np.empty((200_000, 2), dtype=np.float32)
    fill_normals(np.uint64(3), np.uint64(0), np.uint32(11), 2, out)
    assert np.all(np.isfinite(out))
    # mean and variance within ~5 standard errors; a tail and a symmetry check
    assert abs(out.mean(dtype=np.float64)) < 5 / np.sqrt(out.size)
    assert abs(out.var(dtype=np.float64) - 1.0) < 5 * np.sqrt(2 / out.size)
    assert abs(np.mean(np.abs(out) > 1.96) - 0.05) < 0.003
    assert abs(np.mean(out > 3.0) - 0.0013499) < 0.0004
    # different steps, seeds and coordinates give uncorrelated streams
    other = np.empty_like(out)
    fill_normals(np.uint64(4), np.uint64(0), np.uint32(11), 2, other)
    assert abs(np.corrcoef(out[:, 0], other[:, 0])[0, 1]) < 0.02
    assert abs(np.corrcoef(out[:, 0], out[:, 1])[0, 1]) < 0.02


def test_the_four_draws_of_a_counter_are_independent():
    """Steps 4q .. 4q + 3 share a counter: the cos and sin of one transform, then those
    of another from the other words. Each pair of the four is uncorrelated, and so are
    their squares (a radius shared by two draws would correlate those: Box-Muller's
    outputs are independent, and the check would catch a transform fed one radius)."""
    n = 200_000
    quad = np.empty((4, n, 1), dtype=np.float32)
    for u in range(4):
        fill_normals(np.uint64(21), np.uint64(0), np.uint32(40 + u), 1, quad[u])
    z = quad[:, :, 0].astype(np.float64)
    bound = 5 / np.sqrt(n)
    for u in range(4):
        assert abs(z[u].var() - 1.0) < 5 * np.sqrt(2 / n)
        for v in range(u + 1, 4):
            assert abs(np.corrcoef(z[u], z[v])[0, 1]) < bound, (u, v)
            assert abs(np.corrcoef(z[u] ** 2, z[v] ** 2)[0, 1]) < 2 * bound, (u, v)


def test_offset_gives_the_same_numbers():
    whole = np.empty((50, 3), dtype=np.float32)
    part = np.empty((20, 3), dtype=np.float32)
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
        want = np.empty((n, d), dtype=np.float32)
        fill_normals(np.uint64(seed), np.uint64(offset), np.uint32(t), d, want)
        np.testing.assert_array_equal(-res.w, want.astype(dtype))


def _draws_reference(optimizer, n, d, steps, seed, offset, dtype):
    """w after ``steps`` steps on zero curvature from w0 = 0 with rate 1, noise 1 and
    the standalone normals: GD, heavy ball / Nesterov / lr-in-buffer with momentum 0.5
    (every product exact, so no multiply-add can round differently) and Adam /
    AdamW with betas (0.5, 0.75), in the run's dtype."""
    w, b, v = (np.zeros((n, d), dtype) for _ in range(3))
    draw = np.empty((n, d), dtype=np.float32)
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
    weight decay; chunks starting inside a counter's four steps, which redraw its draws) adds
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
    chunks starting inside a counter's four steps, which redraw its draws."""
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
    found = dict(re.findall(r"\b([A-Z][A-Z0-9_]*) = (-?0x[0-9a-f.]+p[-+]?\d+)f", source))
    names = ["LN2_HI", "LN2_LO", "LG1", "LG2", "LG3", "LG4", "S1", "S2", "S3", "C1", "C2", "C3", "PIO2_M30"]
    assert set(found) == set(names)
    for name in names:
        value = getattr(philox, "_" + name)
        assert isinstance(value, np.float32) and float.fromhex(found[name]) == value, name


def test_constants_are_freebsds_and_cephes():
    f = np.float32
    # FreeBSD e_logf.c
    assert philox._LN2_HI == f(6.9313812256e-01) and philox._LN2_LO == f(9.0580006145e-06)
    assert philox._LN2_HI.view(np.uint32) == 0x3F317180 and philox._LN2_LO.view(np.uint32) == 0x3717F7D1
    assert [philox._LG1, philox._LG2, philox._LG3, philox._LG4] == [
        f(0xAAAAAA * 2.0**-24), f(0xCCCE13 * 2.0**-25), f(0x91E9EE * 2.0**-25), f(0xF89E26 * 2.0**-26)]
    # Cephes sinf.c and cosf.c (single precision, |x| <= pi/4)
    assert [philox._S1, philox._S2, philox._S3] == [f(-1.6666654611e-1), f(8.3321608736e-3), f(-1.9515295891e-4)]
    assert [philox._C1, philox._C2, philox._C3] == [f(4.166664568298827e-2), f(-1.388731625493765e-3),
                                                    f(2.443315711809948e-5)]
    # a quarter turn is 2**30 in the angle's word
    assert philox._PIO2_M30 == f(math.pi / 2) * f(2.0**-30)
    # LN2_HI has 17 significant bits: e LN2_HI is exact for |e| <= 64
    assert philox._LN2_HI.view(np.uint32) & 0x7F == 0


NVCC = shutil.which("nvcc") or next(
    (str(p) for p in [pathlib.Path("/usr/local/cuda/bin/nvcc")] if p.exists()), None)


@pytest.mark.skipif(NVCC is None, reason="nvcc not found: the PTX check needs the CUDA toolkit")
def test_device_build_has_no_contracted_or_unrounded_float32_operations(tmp_path):
    """No GPU here, so the device build's bits are argued from its PTX: compiled with
    fused multiply-add allowed (--fmad=true, nvcc's default), the normal has exactly the
    header's nine explicit fused multiply-adds (fma.rn.f32: two in the logarithm, three
    in the sine, four in the cosine) and no other, every float32 add, sub, mul, div and
    sqrt carries .rn (PTX never contracts those), none flushes subnormals (.ftz), so
    each is one IEEE-754 correctly rounded operation, as on the CPU. And no call:
    nothing from libdevice."""
    (tmp_path / "k.cu").write_text(
        '#include "philox.cuh"\n'
        'extern "C" __global__ void normals(unsigned long long seed, float* out, int n) {\n'
        '    int i = blockIdx.x * blockDim.x + threadIdx.x;\n'
        '    if (i < n) out[i] = fastdecay::philox_normal(seed, (unsigned long long)i, 3u, (unsigned)i);\n'
        '}\n')
    run = subprocess.run([NVCC, "--ptx", "-arch=compute_80", "-std=c++17", "--fmad=true", f"-I{KERNELS}", "k.cu",
                          "-o", "k.ptx"], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    ops = re.findall(r"^\s*([a-z]+(?:\.[a-z0-9]+)*)", (tmp_path / "k.ptx").read_text(), re.M)
    f32 = [op for op in ops if op.endswith(".f32") and op.split(".")[0] in ("add", "sub", "mul", "div", "sqrt",
                                                                           "fma", "mad")]
    assert len(f32) > 25  # the whole transform is there
    assert all(".rn." in op and ".ftz" not in op and op.split(".")[0] != "mad" for op in f32), sorted(set(f32))
    assert sum(op.startswith("fma.") for op in f32) == 9, sorted(f32)
    assert not any(op.split(".")[0] == "call" for op in ops)
