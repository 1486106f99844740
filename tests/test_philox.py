"""Philox4x32-10 against the published Random123 known-answer vectors, and the
normals drawn from it against the plain-Python reference."""

import numpy as np
import pytest

from fastdecay._cpu.philox import fill_normals, normal, philox4x32_10
from fastdecay.reference import philox4x32_10 as ref_philox
from fastdecay.reference import philox_normal as ref_normal

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


@pytest.mark.parametrize("seed, trajectory", [(0, 0), (12345, 2**33 + 7), (2**64 - 1, 2**40)])
def test_normals_match_reference(seed, trajectory):
    """Same counters, same uniforms, same Box-Muller: equal to the reference's libm log/cos
    Box-Muller to rounding (the kernels may use their own log/cos so that every backend
    gives the same bits)."""
    for step in (0, 1, 999, 2**32 - 1):
        for coordinate in (0, 5):
            got = normal(np.uint64(seed), np.uint64(trajectory), step, coordinate)
            want = ref_normal(seed, trajectory, step, coordinate)
            # xi = R cos(theta), R <= sqrt(106 ln 2) < 8.6: a few ulps of R and of cos, absolute
            assert abs(got - want) <= 4e-15, (got, want)


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
