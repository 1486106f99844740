"""What the simulation's engine (``simulate.py``) and its per-rule loops (``rules.py``,
section (d)) share: the columns of the per-step scalars, the gradient of a lane with
its noise, a tile's rows of draws, the recording tallies and rows.

A tile is a run of consecutive elements (trajectory x coordinate) that one thread
advances through the steps of a chunk; a lane is one of its elements. With noise
the thread's four rows of ``noise_scratch`` hold the float32 draws of its lanes for
the four steps that share a Philox counter (4q .. 4q + 3), made by
``philox.fill_normal_quads``: the rows, a tuple of four arrays, are the ``zs`` below.

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

from .philox import fill_normal_quads

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
    """Gradient of an element: λ x, plus σ z[j] with noise (z: the step's float32 draws
    of the tile's lanes, widened exactly for float64 elements; None without noise,
    pruned at compile time). Never fused into a multiply-add (no ``fastmath``
    anywhere in the kernels)."""
    g = lam * x
    if z is not None:
        g = g + sigma * like(x, z[j])
    return g


@njit(cache=True)
def tally(lam, x, xn):
    """(squared displacement, 2 x loss) of an element of curvature ``lam`` after x -> xn, in
    float64 (``np.float64``: Numba's ``float()`` keeps a float32 a float32, whose squares
    overflow past 1.8e19). Scalars only, as the element loops' other helpers (a call taking the
    curvature array measured no slower here: LLVM inlines this one)."""
    return (np.float64(xn) - np.float64(x)) ** 2, np.float64(lam) * np.float64(xn) ** 2


def draws(noise_scratch, lanes):
    """This thread's four rows of the noise scratch (steps 4q .. 4q + 3), their first
    ``lanes`` entries, as a tuple; None without noise."""
    if noise_scratch is None:
        return None
    me = numba.get_thread_id()
    return tuple(noise_scratch[me, row, :lanes] for row in range(4))


@overload(draws)
def _draws_impl(noise_scratch, lanes):
    if isinstance(noise_scratch, types.NoneType):
        return lambda noise_scratch, lanes: None

    def rows(noise_scratch, lanes):
        me = numba.get_thread_id()
        return (noise_scratch[me, 0, :lanes], noise_scratch[me, 1, :lanes], noise_scratch[me, 2, :lanes],
                noise_scratch[me, 3, :lanes])
    return rows


def draw_quad(zs, seed, first_trajectory, lane_trajectory, lane_coordinate, t):
    """Fill the four rows with the draws of the steps that share step t's Philox counter
    (4q .. 4q + 3, t among them)."""
    if zs is not None:
        lanes = zs[0].shape[0]
        fill_normal_quads(seed, first_trajectory, lane_trajectory[:lanes], lane_coordinate[:lanes],
                          np.uint64(t >> 2), zs[0], zs[1], zs[2], zs[3])


@overload(draw_quad)
def _draw_quad_impl(zs, seed, first_trajectory, lane_trajectory, lane_coordinate, t):
    if isinstance(zs, types.NoneType):
        return lambda zs, seed, first_trajectory, lane_trajectory, lane_coordinate, t: None
    return draw_quad


def step_draws(zs, t):
    """The row of step t (None without noise)."""
    return None if zs is None else zs[t & 3]


@overload(step_draws)
def _step_draws_impl(zs, t):
    if isinstance(zs, types.NoneType):
        return lambda zs, t: None
    return lambda zs, t: zs[t & 3]


@njit(cache=True)
def tile_span(b, tile, size, d, noise_scratch, offset, lane_trajectory, lane_coordinate):
    """(e0, e1, zs, first_trajectory, lane_trajectory, lane_coordinate) of tile b of
    ``tile`` elements among ``size``: its elements e0 .. e1 - 1, this thread's rows of
    draws for them (None without noise), the global index of the trajectory of
    element e0 and the lane tables from that element's coordinate on (a tile may start
    inside a trajectory, and span the start of the next: the tables run past d)."""
    e0 = b * tile
    e1 = min(e0 + tile, size)
    k0 = e0 % d
    return (e0, e1, draws(noise_scratch, e1 - e0), offset + np.uint64(e0 // d),
            lane_slice(lane_trajectory, k0, k0 + e1 - e0), lane_slice(lane_coordinate, k0, k0 + e1 - e0))


@njit(cache=True)
def draws_of_step(zs, seed, first_trajectory, lane_trajectory, lane_coordinate, t, first):
    """The draws of step t (None without noise): the four steps of a Philox counter are
    drawn at the first of them (t % 4 == 0), or at the first step of a call (``first``)."""
    if first or t % 4 == 0:
        draw_quad(zs, seed, first_trajectory, lane_trajectory, lane_coordinate, t)
    return step_draws(zs, t)


def lane_slice(z, a, b):
    """z[a:b], or None without noise."""
    return None if z is None else z[a:b]


@overload(lane_slice)
def _lane_slice_impl(z, a, b):
    if isinstance(z, types.NoneType):
        return lambda z, a, b: None
    return lambda z, a, b: z[a:b]


def record_row(rows, i):
    """The row of the records of the trajectory at place i: rows[i], or i where ``rows`` is None
    (a grouped run records each trajectory in its own row, wherever it runs)."""
    return i if rows is None else rows[i]


@overload(record_row)
def _record_row_impl(rows, i):
    if isinstance(rows, types.NoneType):
        return lambda rows, i: i
    return lambda rows, i: rows[i]


def has_lanes(z):
    """Whether ``z`` is a table of lanes (not None, not empty)."""
    return z is not None and z.shape[0] > 0


@overload(has_lanes)
def _has_lanes_impl(z):
    if isinstance(z, types.NoneType):
        return lambda z: False
    return lambda z: z.shape[0] > 0
