"""What the simulation's engine (``simulate.py``) and its per-rule loops (``rules.py``,
section (d)) share: the columns of the per-step scalars, the gradient of a lane with
its noise, a tile's rows of draws, the recording tallies.

A tile is a run of consecutive elements (trajectory x coordinate) that one thread
advances through the steps of a chunk; a lane is one of its elements. With noise
the thread's two rows of ``noise_scratch`` hold the float64 draws of its lanes for
a pair of steps (even, odd), made by ``philox.fill_normal_pairs``.

The noise helpers are resolved by type when a kernel compiles: with no noise
scratch (None) each is a constant None and every noise term vanishes from the
loops; with one, plain array code (never an Optional, which would stop
vectorization). Each has a Python twin for reading.
"""

import numpy as np
import numba
from numba import njit, types
from numba.extending import overload
from numba.np.numpy_support import as_dtype

from .philox import fill_normal_pairs

# columns of step_scalars (the shared rates of each step of a chunk)
LR = 0
WD = 1
SCALE = 2
MOM = 3
N_SCALARS = 4


def one_like(x):
    """1 in the type of the scalar ``x`` (Python twin of the overload below)."""
    return type(x)(1.0)


@overload(one_like)
def _one_like_impl(x):
    if isinstance(x, types.Float):
        one = x.cast_python_value(1.0)
        return lambda x: one  # a compile-time constant in the caller's IR
    return None


def like(x, v):
    """v rounded to the type of the scalar ``x`` (Python twin of the overload below)."""
    return type(x)(v)


@overload(like)
def _like_impl(x, v):
    if isinstance(x, types.Float):
        cast = as_dtype(x).type
        return lambda x, v: cast(v)
    return None


@njit(cache=True)
def gradient(lam, x, z, sigma, j):
    """Gradient of an element: λ x, plus σ z[j] with noise (z: the step's draws of the
    tile's lanes in float64, rounded here to the element type; None without noise,
    pruned at compile time). Never fused into a multiply-add (no ``fastmath``
    anywhere in the kernels)."""
    g = lam * x
    if z is not None:
        g = g + sigma * like(x, z[j])
    return g


@njit(cache=True)
def tally(lam, j, x, xn):
    """(squared displacement, 2 x loss) of element j after x -> xn, in float64."""
    return (float(xn) - float(x)) ** 2, float(lam[j]) * float(xn) ** 2


def draws(noise_scratch, row, lanes):
    """This thread's row ``row`` (0: even steps, 1: odd steps) of the noise scratch, its
    first ``lanes`` entries; None without noise."""
    return None if noise_scratch is None else noise_scratch[numba.get_thread_id(), row, :lanes]


@overload(draws)
def _draws_impl(noise_scratch, row, lanes):
    if isinstance(noise_scratch, types.NoneType):
        return lambda noise_scratch, row, lanes: None
    return lambda noise_scratch, row, lanes: noise_scratch[numba.get_thread_id(), row, :lanes]


def draw_pairs(z_even, z_odd, seed, first_trajectory, lane_trajectory, lane_coordinate, t):
    """Fill the two rows with the draws of steps t and t + 1 (t even) or t - 1 and t."""
    if z_even is not None:
        lanes = z_even.shape[0]
        fill_normal_pairs(seed, first_trajectory, lane_trajectory[:lanes], lane_coordinate[:lanes],
                          np.uint64(t >> 1), z_even, z_odd)


@overload(draw_pairs)
def _draw_pairs_impl(z_even, z_odd, seed, first_trajectory, lane_trajectory, lane_coordinate, t):
    if isinstance(z_even, types.NoneType):
        return lambda z_even, z_odd, seed, first_trajectory, lane_trajectory, lane_coordinate, t: None
    return draw_pairs


def step_draws(z_even, z_odd, t):
    """The row of step t (None without noise)."""
    return None if z_even is None else (z_odd if t % 2 else z_even)


@overload(step_draws)
def _step_draws_impl(z_even, z_odd, t):
    if isinstance(z_even, types.NoneType):
        return lambda z_even, z_odd, t: None
    return lambda z_even, z_odd, t: z_odd if t % 2 else z_even


@njit(cache=True)
def tile_span(b, tile, size, d, noise_scratch, offset, lane_trajectory, lane_coordinate):
    """(e0, e1, z_even, z_odd, first_trajectory, lane_trajectory, lane_coordinate) of tile
    b of ``tile`` elements among ``size``: its elements e0 .. e1 - 1, this thread's rows
    of draws for them (None without noise), the global index of the trajectory of
    element e0 and the lane tables from that element's coordinate on (a tile may start
    inside a trajectory, and span the start of the next: the tables run past d)."""
    e0 = b * tile
    e1 = min(e0 + tile, size)
    k0 = e0 % d
    return (e0, e1, draws(noise_scratch, 0, e1 - e0), draws(noise_scratch, 1, e1 - e0), offset + np.uint64(e0 // d),
            lane_slice(lane_trajectory, k0, k0 + e1 - e0), lane_slice(lane_coordinate, k0, k0 + e1 - e0))


@njit(cache=True)
def draws_of_step(z_even, z_odd, seed, first_trajectory, lane_trajectory, lane_coordinate, t, first):
    """The draws of step t (None without noise): the pair of steps is drawn at its even
    step, or at the first step of a call (``first``)."""
    if first or t % 2 == 0:
        draw_pairs(z_even, z_odd, seed, first_trajectory, lane_trajectory, lane_coordinate, t)
    return step_draws(z_even, z_odd, t)


def lane_slice(z, a, b):
    """z[a:b], or None without noise."""
    return None if z is None else z[a:b]


@overload(lane_slice)
def _lane_slice_impl(z, a, b):
    if isinstance(z, types.NoneType):
        return lambda z, a, b: None
    return lambda z, a, b: z[a:b]
