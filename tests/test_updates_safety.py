"""What must never crash or be silently wrong in the fused updates: tensors without memory,
threads under Numba's workqueue layer, arrays sharing memory, absurd steps.

Cases that crashed the interpreter before they were refused run in a subprocess, so a
regression fails one test instead of killing the run.
"""

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import fastdecay as fd

torch = pytest.importorskip("torch")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(code, **env):
    """Run ``code`` in a fresh interpreter with this checkout first on the path."""
    environ = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), **env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=environ, timeout=600)


# ----------------------------------------------------------------------------- tensors without memory

RISKY = textwrap.dedent("""
    import torch, numpy as np, fastdecay as fd
    from torch._subclasses.fake_tensor import FakeTensorMode
    with FakeTensorMode():
        fake = torch.ones(4)
    meta = torch.ones(4, device="meta")
    sparse = torch.ones(4).to_sparse()
    nested = torch.nested.nested_tensor([torch.ones(2), torch.ones(2)])
    cases = {
        "param meta": lambda w, g, m, v: fd.adamw_step(meta, g, m, v, step=0, lr=0.1),
        "grad meta": lambda w, g, m, v: fd.adamw_step(w, meta, m, v, step=0, lr=0.1),
        "exp_avg meta": lambda w, g, m, v: fd.adamw_step(w, g, meta, v, step=0, lr=0.1),
        "exp_avg_sq fake": lambda w, g, m, v: fd.adamw_step(w, g, m, fake, step=0, lr=0.1),
        "grad fake": lambda w, g, m, v: fd.sgd_step(w, fake, step=0, lr=0.1),
        "momentum_buffer meta": lambda w, g, m, v: fd.sgd_step(w, g, step=0, lr=0.1, momentum=0.9,
                                                              momentum_buffer=meta),
        "grad sparse": lambda w, g, m, v: fd.sgd_step(w, sparse, step=0, lr=0.1),
        "param nested": lambda w, g, m, v: fd.sgd_step(nested, nested, step=0, lr=0.1),
        "step meta": lambda w, g, m, v: fd.sgd_step(w, g, step=torch.tensor(1, device="meta"), lr=0.1),
        "grad_scale meta": lambda w, g, m, v: fd.sgd_step(w, g, step=0, lr=0.1,
                                                         grad_scale=torch.tensor(2.0, device="meta")),
        "found_inf fake": lambda w, g, m, v: fd.sgd_step(w, g, step=0, lr=0.1, found_inf=fake[0]),
        "grad list meta": lambda w, g, m, v: fd.adamw_step([w, w + 1], [g, meta], [m, m + 1], [v, v + 1],
                                                          step=0, lr=0.1),
    }
    for label, call in cases.items():
        w, g, m, v = (torch.full((4,), float(k + 1)) for k in range(4))
        before = [x.clone() for x in (w, g, m, v)]
        try:
            call(w, g, m, v)
            print(label, "ACCEPTED")
        except (TypeError, ValueError) as err:
            untouched = all(torch.equal(a, b) for a, b in zip((w, g, m, v), before))
            print(label, "|", type(err).__name__, "|", err, "|", "untouched" if untouched else "WRITTEN")
""")


def test_tensors_without_memory_are_refused_by_name_in_a_subprocess():
    run = _run(RISKY)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = [line for line in run.stdout.splitlines() if "|" in line or "ACCEPTED" in line]
    assert len(lines) == 12, run.stdout
    for line in lines:
        label, kind, message, untouched = (part.strip() for part in line.split("|"))
        name = label.split()[0]
        assert name in message, line
        assert untouched == "untouched", line
        assert kind == "TypeError", line
    assert any("device meta" in line for line in lines)
    assert any("fake tensor" in line for line in lines)
    assert any("layout torch.sparse_coo" in line for line in lines)
    assert any("nested" in line for line in lines)


# ----------------------------------------------------------------------------- threads


THREADS = textwrap.dedent("""
    import threading, numba, numpy as np, fastdecay as fd
    n = 300_000  # above the serial threshold: every call launches the parallel kernel
    def run(seed, out):
        rng = np.random.default_rng(seed)
        w = rng.standard_normal(n).astype(np.float32)
        m, v = np.zeros_like(w), np.zeros_like(w)
        for t in range(30):
            fd.adamw_step(w, rng.standard_normal(n).astype(np.float32), m, v, step=t, lr=1e-2)
        out[seed] = w
    serial = {}
    for seed in range(4):
        run(seed, serial)
    parallel = {}
    threads = [threading.Thread(target=run, args=(seed, parallel)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(serial[s], parallel[s]) for s in range(4))
    print("layer", numba.threading_layer(), "ok")
""")


@pytest.mark.parametrize("layer", ["workqueue", "default"])
def test_four_threads_stepping_at_once_in_a_subprocess(layer):
    env = {"NUMBA_THREADING_LAYER": layer} if layer != "default" else {}
    run = _run(THREADS, **env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "ok" in run.stdout
    if layer == "workqueue":
        assert "layer workqueue" in run.stdout


# ----------------------------------------------------------------------------- memory shared between arrays


def _adam(w, g, m, v, **kw):
    fd.adamw_step(w, g, m, v, step=kw.pop("step", 3), lr=0.1, weight_decay=0.01, **kw)


def _refused(call, arrays, *names):
    before = [np.array(a, copy=True) for a in arrays]
    with pytest.raises(ValueError, match="overlaps") as err:
        call()
    for name in names:
        assert name in str(err.value)
    for a, b in zip(arrays, before):
        np.testing.assert_array_equal(a, b)


def test_written_arrays_that_share_memory_are_refused_by_name():
    rng = np.random.default_rng(0)
    base = rng.standard_normal(40)
    w, g, m, v = (base[10 * k:10 * (k + 1)] for k in range(4))
    arrays = [base]
    _refused(lambda: _adam(w, g, m, m), arrays, "exp_avg_sq", "exp_avg")
    _refused(lambda: _adam(w, g, w, v), arrays, "exp_avg", "param")
    _refused(lambda: fd.sgd_step(w, g, step=1, lr=0.1, momentum=0.9, momentum_buffer=w), arrays,
             "momentum_buffer", "param")
    w2, g2 = rng.standard_normal(10), rng.standard_normal(10)
    arrays = [base, w2, g2]
    _refused(lambda: _adam([w, w2], [g, g2], [m, m], [v, base[30:]]), arrays, "exp_avg[1]", "exp_avg[0]")
    m2, v2 = rng.standard_normal(10), rng.standard_normal(10)
    _refused(lambda: _adam([w, w], [g, g2], [m, m2], [v, v2]), arrays + [m2, v2], "param[1]", "param[0]")
    # gradients that overlap the parameter at an offset
    a = rng.standard_normal(11)
    arrays = [a, base]
    _refused(lambda: fd.sgd_step(a[:-1], a[1:], step=0, lr=0.1), arrays, "grad", "param")
    _refused(lambda: fd.sgd_step(a[1:], a[:-1], step=0, lr=0.1), arrays, "grad", "param")
    # a gradient that is another parameter
    _refused(lambda: fd.sgd_step([w, w2], [w2, g2], step=0, lr=0.1), arrays + [w2], "grad[0]", "param[1]")
    # torch tensors, exp_avg_sq[3] named
    ts = [torch.randn(5) for _ in range(4)]
    ms = [torch.zeros(5) for _ in range(4)]
    vs = [torch.zeros(5) for _ in range(3)] + [ms[3]]
    with pytest.raises(ValueError, match=r"exp_avg_sq\[3\] overlaps exp_avg\[3\]|exp_avg\[3\] overlaps exp_avg_sq\[3\]"):
        fd.adamw_step(ts, [t.clone() for t in ts], ms, vs, step=0, lr=0.1)


def test_harmless_sharing_is_allowed_and_equals_independent_copies():
    rng = np.random.default_rng(1)
    w0 = rng.standard_normal(17)
    # a gradient that is its own parameter (d/dw of |w|^2/2)
    w, m, v = w0.copy(), np.zeros(17), np.zeros(17)
    ref, rm, rv = w0.copy(), np.zeros(17), np.zeros(17)
    for t in range(5):
        fd.adamw_step(w, w, m, v, step=t, lr=0.1)
        fd.adamw_step(ref, ref.copy(), rm, rv, step=t, lr=0.1)
    np.testing.assert_array_equal(w, ref)
    # one gradient for two parameters
    g = rng.standard_normal(17)
    a, b = w0.copy(), 2 * w0
    ra, rb = a.copy(), b.copy()
    fd.sgd_step([a, b], [g, g], step=0, lr=0.1)
    fd.sgd_step([ra, rb], [g.copy(), g.copy()], step=0, lr=0.1)
    np.testing.assert_array_equal(a, ra)
    np.testing.assert_array_equal(b, rb)
    # momentum buffers of two parameters that sit side by side in one allocation
    bufs = np.zeros(34)
    fd.sgd_step([a, b], [g, g], step=0, lr=0.1, momentum=0.9, momentum_buffer=[bufs[:17], bufs[17:]])
    np.testing.assert_array_equal(bufs[:17], g)


# ----------------------------------------------------------------------------- unclear errors


@pytest.mark.parametrize("step", [10**400, 2**53 + 1, np.uint64(2**63), -1])
def test_absurd_steps_are_refused_by_name(step):
    w = np.ones(3)
    with pytest.raises(ValueError, match="step must be an integer from 0 to 2\\*\\*53"):
        fd.sgd_step(w, w.copy(), step=step, lr=0.1)
    np.testing.assert_array_equal(w, np.ones(3))


def test_largest_step_runs():
    w = np.ones(3)
    fd.sgd_step(w, np.ones(3), step=2**53, lr=0.1)
    np.testing.assert_allclose(w, 0.9)


def test_new_gradients_on_a_reused_plan_are_checked_for_overlap():
    """The second call reuses the first call's checks; its new gradients are still checked."""
    ps = [torch.randn(8) for _ in range(3)]
    ms, vs = [torch.zeros(8) for _ in range(3)], [torch.zeros(8) for _ in range(3)]
    gs = [torch.randn(8) for _ in range(3)]
    fd.adamw_step(ps, gs, ms, vs, step=0, lr=1e-3)
    before = [p.clone() for p in ps]
    with pytest.raises(ValueError, match=r"grad\[1\] overlaps param\[0\]"):
        fd.adamw_step(ps, [gs[0], ps[0], gs[2]], ms, vs, step=1, lr=1e-3)
    assert all(torch.equal(a, b) for a, b in zip(ps, before))
    with pytest.raises(TypeError, match=r"grad\[2\] must have the dtype of its parameter"):
        fd.adamw_step(ps, [gs[0], gs[1], gs[2].double()], ms, vs, step=1, lr=1e-3)
    fresh = [g.clone() for g in gs]
    ref = [p.clone() for p in ps]
    fd.adamw_step(ps, fresh, ms, vs, step=1, lr=1e-3)
    assert not any(torch.equal(a, b) for a, b in zip(ps, ref))


def test_two_state_sets_over_the_same_parameters_keep_a_launch_plan_each(monkeypatch):
    """Two optimizers over the same parameters (each with its own state) alternate without
    rebuilding each other's launch plan, and each updates as it would alone."""
    from fastdecay import _update_plan

    ps = [torch.randn(8) for _ in range(3)]
    gs = [torch.randn(8) for _ in range(3)]
    states = [([torch.zeros(8) for _ in range(3)], [torch.zeros(8) for _ in range(3)]) for _ in range(2)]
    alone = [p.clone() for p in ps], [torch.zeros(8) for _ in range(3)], [torch.zeros(8) for _ in range(3)]
    for m, v in states:
        fd.adamw_step(ps, gs, m, v, step=0, lr=1e-3)
    builds = []
    build = _update_plan.build
    monkeypatch.setattr(_update_plan, "build", lambda *a: builds.append(1) or build(*a))
    for t in range(1, 4):
        for m, v in states:
            fd.adamw_step(ps, gs, m, v, step=t, lr=1e-3)
    assert builds == []
    for t in range(4):  # the same four steps on copies, with one state set
        fd.adamw_step(alone[0], gs, alone[1], alone[2], step=t, lr=1e-3)
    # AdamW's moments depend on the gradients only: each state set was updated once a step
    for m, v in states:
        for k in range(3):
            assert torch.equal(m[k], alone[1][k]) and torch.equal(v[k], alone[2][k])


@pytest.mark.parametrize("warm", [1, 3])
def test_new_gradients_unlike_their_parameters_leave_the_fast_check(warm):
    """A reused plan checks new gradients in C-level passes (from its third call, one pass of
    its tensor guard); any gradient that is not plainly like its parameter goes to the full
    check: refused by name with nothing written, or (another layout) updated exactly as a
    contiguous gradient would be."""
    ps = [torch.randn(4, 6) for _ in range(3)]
    ms, vs = [torch.zeros(4, 6) for _ in range(3)], [torch.zeros(4, 6) for _ in range(3)]
    gs = [torch.randn(4, 6) for _ in range(3)]
    for t in range(warm):  # the plan, cached (and, new gradients accepted on it, its guards)
        fd.adamw_step(ps, [g.clone() for g in gs], ms, vs, step=t, lr=1e-3)
    refused = {
        "shape": ([gs[0], gs[1].reshape(6, 4), gs[2]], ValueError, r"grad\[1\] must have the shape"),
        "neg bit": ([gs[0], gs[1], torch._neg_view(gs[2])], TypeError, r"grad\[2\] must be .*neg"),
        "dtype": ([gs[0].half(), gs[1], gs[2]], TypeError, r"grad\[0\] must have the dtype"),
        "meta": ([gs[0], torch.empty(4, 6, device="meta"), gs[2]], TypeError, r"grad\[1\]"),
    }
    for name, (grads, error, match) in refused.items():
        before = [t.clone() for t in ps + ms + vs]
        with pytest.raises(error, match=match):
            fd.adamw_step(ps, grads, ms, vs, step=warm, lr=1e-3)
        assert all(torch.equal(a, b) for a, b in zip(ps + ms + vs, before)), name
    # a gradient laid out unlike its parameter (transposed storage): the same update as its contiguous copy
    odd = torch.randn(6, 4).t()
    copies = [[t.clone() for t in column] for column in (ps, ms, vs)]
    fd.adamw_step(ps, [gs[0], odd, gs[2]], ms, vs, step=warm, lr=1e-3)
    fd.adamw_step(*copies[:1], [gs[0], odd.contiguous(), gs[2]], *copies[1:], step=warm, lr=1e-3)
    for a, b in zip(ps + ms + vs, sum(copies, [])):
        assert torch.equal(a, b)


def test_new_gradients_every_call_are_checked_without_weak_references(monkeypatch):
    """A backward makes new gradient tensors every step: a reused plan checks them every
    call and keeps no weak reference to them (one object per tensor per step for the
    garbage collector); gradients that come back call after call get weak references
    once, then take the shortcut (no check of new gradients)."""
    from fastdecay import _update_plan

    ps = [torch.randn(8) for _ in range(3)]
    ms, vs = [torch.zeros(8) for _ in range(3)], [torch.zeros(8) for _ in range(3)]
    gs = [torch.randn(8) for _ in range(3)]
    kept = [[g.clone() for g in gs] for _ in range(5)]  # alive together: their ids differ
    fd.adamw_step(ps, kept[0], ms, vs, step=0, lr=1e-3)  # the plan, cached
    weak, checks = [], []
    monkeypatch.setattr(_update_plan, "_weak", lambda arrays, f=_update_plan._weak: weak.append(1) or f(arrays))
    monkeypatch.setattr(_update_plan, "_new_grads", lambda *a, f=_update_plan._new_grads: checks.append(1) or f(*a))
    for t, grads in enumerate(kept[1:], start=1):
        fd.adamw_step(ps, grads, ms, vs, step=t, lr=1e-3)
    assert (len(weak), len(checks)) == (0, 4)
    for t in range(5, 9):  # the same gradient tensors call after call
        fd.adamw_step(ps, gs, ms, vs, step=t, lr=1e-3)
    assert (len(weak), len(checks)) == (1, 6)  # new at step 5, seen again (weak references) at 6
    # and the update is the one a fresh plan gives
    copies = [[t.clone() for t in column] for column in (ps, ms, vs)]
    fd.adamw_step(ps, gs, ms, vs, step=9, lr=1e-3)
    _update_plan._PLANS.clear()
    fd.adamw_step(copies[0], gs, copies[1], copies[2], step=9, lr=1e-3)
    for a, b in zip(ps + ms + vs, sum(copies, [])):
        assert torch.equal(a, b)


def test_new_gradients_of_a_long_list_in_two_groups_reach_each_group_s_table(monkeypatch):
    """A reused plan over more tensors than the overlap check's Python loop takes (NumPy's
    way), in two launch groups (float32 and float64 parameters interleaved): each call's new
    gradients go to their group's address table, in the group's order, and every step gives
    the weights, momenta and second moments of the same step taken one tensor at a time."""
    from fastdecay import _update_plan

    n = _update_plan._GradOverlap.SHORT + 37
    dtypes = [torch.float32 if k % 3 else torch.float64 for k in range(n)]
    sizes = [1 + (7 * k) % 11 for k in range(n)]
    rng = torch.Generator().manual_seed(3)
    ps = [torch.randn(size, generator=rng).to(d) for size, d in zip(sizes, dtypes)]
    ms, vs = [torch.zeros_like(p) for p in ps], [torch.zeros_like(p) for p in ps]
    alone = [[t.clone() for t in column] for column in (ps, ms, vs)]
    checks = []
    monkeypatch.setattr(_update_plan, "_new_grads", lambda *a, f=_update_plan._new_grads: checks.append(1) or f(*a))
    steps = [[torch.randn(size, generator=rng).to(d) for size, d in zip(sizes, dtypes)] for _ in range(4)]
    after = []
    for t, grads in enumerate(steps):
        fd.adamw_step(ps, grads, ms, vs, step=t, lr=1e-2, weight_decay=0.1)
        after.append([x.clone() for x in ps + ms + vs])
    assert len(checks) == 3  # (the long list's plan, reused with new gradients at steps 1 to 3)
    for t, grads in enumerate(steps):
        for k in range(n):
            fd.adamw_step(alone[0][k], grads[k], alone[1][k], alone[2][k], step=t, lr=1e-2, weight_decay=0.1)
        for a, b in zip(after[t], sum(alone, [])):
            assert torch.equal(a, b), t


@pytest.mark.parametrize("copies", [1, 8])
def test_new_gradients_are_refused_exactly_where_a_first_call_refuses_them(copies, monkeypatch):
    """A reused plan checks new gradients against its written arrays' spans sorted once (two
    binary searches each: a Python loop for a short list, NumPy for a long one); on every
    placement (inside, straddling, touching or apart from the parameters and states; a
    gradient that is its own parameter) it accepts and refuses as the full check of a first
    call does, and a refusal writes nothing."""
    from fastdecay import _update_plan

    sizes = [5, 0, 17, 8] * copies
    monkeypatch.setattr(_update_plan._GradOverlap, "SHORT", 24)  # (32 tensors: NumPy's way)
    assert (len(sizes) <= _update_plan._GradOverlap.SHORT) == (copies == 1)  # both ways of checking
    if copies == 1:
        starts, m_at, v_at, length = [0, 60, 100, 300], 500, 820, 1200
    else:  # the parameters one element apart, then the exp_avg and exp_avg_sq alike
        starts = [sum(sizes[:k]) + k for k in range(len(sizes))]
        m_at, v_at = 300, 600
        length = 900
    pool = torch.zeros(length)
    ps = [pool[a:a + n] for a, n in zip(starts, sizes)]
    ms = [pool[m_at + a:m_at + a + n] for a, n in zip(starts, sizes)]
    vs = [pool[v_at + a:v_at + a + n] for a, n in zip(starts, sizes)]
    rng = np.random.default_rng(7)
    placements = [[int(rng.integers(0, length - 20)) for _ in sizes] for _ in range(150)]
    if copies == 1:
        placements += [starts, [starts[1], 60, 100, 308], [starts[2]] + starts[1:], [495, 60, 483, 1120]]
    else:  # all apart from the written arrays (empty ones anywhere), then one moved onto a state, onto its parameter
        apart = [length - 20 + k % 3 if n else starts[k] for k, n in enumerate(sizes)]
        placements += [apart, apart[:30] + [m_at + starts[30]] + apart[31:], apart[:6] + [starts[6]] + apart[7:],
                       apart[:7] + [starts[6]] + apart[8:]]
    outcomes = set()
    for offsets in placements:
        grads = [pool[o:o + n] for o, n in zip(offsets, sizes)]
        verdicts = []
        for reused in (False, True):
            _update_plan._PLANS.clear()
            if reused:  # a plan made by a call with gradients of their own
                fd.adamw_step(ps, [torch.ones(n) for n in sizes], ms, vs, step=1, lr=1e-3)
            before = pool.clone()
            try:
                fd.adamw_step(ps, grads, ms, vs, step=1, lr=1e-3)
                verdicts.append("accepted")
            except ValueError as err:
                assert "overlaps" in str(err) and torch.equal(pool, before)
                verdicts.append("refused")
        assert verdicts[0] == verdicts[1], (offsets, verdicts)
        outcomes.add(verdicts[0])
    assert outcomes == {"accepted", "refused"}


def test_arrays_in_another_byte_order_are_refused_by_name():
    w = np.ones(3)
    g = np.ones(3, dtype=">f8")
    with pytest.raises(TypeError, match=r"grad must be an array in the machine's byte order, got dtype >f8"):
        fd.sgd_step(w, g, step=0, lr=0.1)
    with pytest.raises(TypeError, match=r"param\[1\] must be an array in the machine's byte order, got dtype >f4"):
        fd.sgd_step([np.ones(2, np.float32), np.ones(2, ">f4")], [np.ones(2, np.float32)] * 2, step=0, lr=0.1)
    np.testing.assert_array_equal(w, 1.0)


def test_self_overlapping_written_views_are_refused_before_any_write():
    """An expanded (stride-0) or otherwise self-overlapping parameter or state would make the
    result depend on the order of the writes: refused by name, nothing written, while a
    broadcast gradient (read only) and a gap-leaving slice are fine."""
    p1, b1 = torch.ones(5), torch.zeros(5)
    p2, row = torch.ones(3, 4), torch.zeros(4)
    with pytest.raises(ValueError, match=r"momentum_buffer\[1\] must not overlap itself"):
        fd.sgd_step([p1, p2], [torch.ones(5), torch.ones(3, 4)], step=0, lr=0.1, momentum=0.9,
                    momentum_buffer=[b1, row.expand(3, 4)])
    assert torch.equal(p1, torch.ones(5)) and torch.equal(b1, torch.zeros(5)) and torch.equal(p2, torch.ones(3, 4))
    with pytest.raises(ValueError, match=r"param must not overlap itself"):
        fd.sgd_step(row.expand(3, 4), torch.ones(3, 4), step=0, lr=0.1)
    base = np.arange(6.0)
    diagonal = np.lib.stride_tricks.as_strided(base, shape=(3, 4), strides=(8, 8))
    with pytest.raises(ValueError, match=r"param must not overlap itself"):
        fd.sgd_step(diagonal, np.ones((3, 4)), step=0, lr=1.0)
    np.testing.assert_array_equal(base, np.arange(6.0))
    # a broadcast gradient and a slice with gaps: updated as their contiguous copies would be
    a = np.ones((4, 6))
    fd.sgd_step(a[::2, ::3], np.broadcast_to(np.arange(2.0), (2, 2)), step=0, lr=1.0)
    expected = np.ones((4, 6))
    expected[::2, ::3] -= np.arange(2.0)
    np.testing.assert_array_equal(a, expected)


def test_a_cached_plan_sees_arrays_made_read_only_or_restrided():
    w, g, buf = np.ones(6), np.ones(6), np.zeros(6)
    fd.sgd_step(w, g, step=0, lr=0.1, momentum=0.9, momentum_buffer=buf)  # the plan, cached
    for name, array in (("param", w), ("momentum_buffer", buf)):
        array.flags.writeable = False
        before = (w.copy(), buf.copy())
        with pytest.raises(ValueError, match=f"{name} must be writeable"):
            fd.sgd_step(w, g, step=1, lr=0.1, momentum=0.9, momentum_buffer=buf)
        np.testing.assert_array_equal(w, before[0])
        np.testing.assert_array_equal(buf, before[1])
        array.flags.writeable = True


@pytest.mark.parametrize("warm", [1, 3])
@pytest.mark.parametrize("change", ["t_", "data_t", "resize_", "as_strided_"])
def test_a_cached_plan_sees_torch_tensors_changed_in_place(change, warm):
    """In-place metadata changes keep a tensor's data pointer; the plan built before them must
    not be reused: the update equals the one on a fresh copy of the changed tensors (on the
    plan's second call, checked by its passes; from its third, by its tensor guards)."""
    torch.manual_seed(0)
    p = torch.randn(3, 3, dtype=torch.float64)
    g0 = torch.randn(3, 3, dtype=torch.float64)
    buf = torch.zeros(3, 3, dtype=torch.float64)
    for t in range(warm):  # the plan, cached
        fd.sgd_step(p, g0.clone(), step=t, lr=0.1, momentum=0.9, momentum_buffer=buf)
    if change == "t_":
        p.t_()
    elif change == "data_t":
        p.data = p.data.t()
    elif change == "resize_":
        p.resize_(2, 2)
        buf.resize_(2, 2)
    else:
        p.as_strided_((3, 3), (1, 3))
    g = torch.randn(p.shape, dtype=torch.float64)
    fresh_p, fresh_buf = p.clone(), buf.clone()
    fd.sgd_step(fresh_p, g, step=warm, lr=0.1, momentum=0.9, momentum_buffer=fresh_buf)
    storage = torch.tensor([], dtype=torch.float64).set_(p.untyped_storage()).clone()
    fd.sgd_step(p, g, step=warm, lr=0.1, momentum=0.9, momentum_buffer=buf)
    assert torch.equal(p, fresh_p) and torch.equal(buf, fresh_buf)
    if change == "resize_":  # the elements past the resized tensor are not written
        after = torch.tensor([], dtype=torch.float64).set_(p.untyped_storage())
        assert torch.equal(after[4:], storage[4:])


def test_inference_tensors_are_written_only_inside_inference_mode():
    """torch refuses an in-place update of a tensor made under torch.inference_mode() outside
    it; so does every fused update, before writing anything, on a first call or a reused plan."""
    torch = pytest.importorskip("torch")
    with torch.inference_mode():
        w, buf = torch.ones(3), torch.zeros(3)
        fd.sgd_step(w, torch.ones(3), step=0, lr=0.1, momentum=0.9, momentum_buffer=buf)  # allowed there
    before = w.clone(), buf.clone()
    for _ in range(2):  # the cached plan must not carry the call out of inference mode
        with pytest.raises(ValueError, match=r"param must be writeable .* got an inference tensor"):
            fd.sgd_step(w, torch.ones(3), step=1, lr=0.1, momentum=0.9, momentum_buffer=buf)
        assert torch.equal(w, before[0]) and torch.equal(buf, before[1])
    fresh = torch.ones(3)
    with torch.inference_mode():
        done = torch.zeros(3)
    with pytest.raises(ValueError, match=r"momentum_buffer must be writeable .* inference tensor"):
        fd.sgd_step(fresh, torch.ones(3), step=0, lr=0.1, momentum=0.9, momentum_buffer=done)
    assert torch.equal(fresh, torch.ones(3))


def test_a_reused_plan_sees_numpy_gradients_changed_in_place():
    """A kept NumPy gradient whose strides, shape or dtype are set in place is read as it is
    now (or refused as a fresh call refuses it), not through the cached plan's old layout."""
    w, g = np.zeros((3, 3)), np.arange(9.0).reshape(3, 3)
    fd.sgd_step(w, g, step=0, lr=1.0)
    w[...] = 0.0
    with warnings.catch_warnings():            # (the strides setter is deprecated, not gone)
        warnings.simplefilter("ignore", DeprecationWarning)
        g.strides = (8, 24)                    # g now reads as its transpose
    fd.sgd_step(w, g, step=1, lr=1.0)
    np.testing.assert_array_equal(-w, g)
    g2 = np.arange(9.0).reshape(3, 3)
    fd.sgd_step(w, g2, step=0, lr=1.0)
    before = w.copy()
    g2.shape = (9,)
    with pytest.raises(ValueError, match=r"grad must have the shape of its parameter \(3, 3\), got \(9,\)"):
        fd.sgd_step(w, g2, step=1, lr=1.0)
    g2.shape = (3, 3)
    g2.dtype = np.float32                      # the same bytes, read as 18 float32 numbers
    with pytest.raises((TypeError, ValueError), match="grad must have the"):
        fd.sgd_step(w, g2, step=1, lr=1.0)
    np.testing.assert_array_equal(w, before)


def test_a_reused_plan_sees_a_parameter_retyped_in_place():
    """``p.data = p.data.view(torch.float16)`` keeps the address and layout of a bfloat16
    parameter: the plan is rebuilt and the kernel reads float16, as a fresh call does."""
    torch = pytest.importorskip("torch")
    p, g = torch.ones(4, dtype=torch.bfloat16), torch.ones(4, dtype=torch.bfloat16)
    for t in range(3):  # (from the third call, the plan's tensor guards check it)
        fd.sgd_step(p, g, step=t, lr=0.5)
    p.data = p.data.view(torch.float16)
    g.data = g.data.view(torch.float16)
    p.fill_(1.0)
    g.fill_(1.0)
    fd.sgd_step(p, g, step=1, lr=0.5)
    assert p.dtype == torch.float16 and p.tolist() == [0.5] * 4


@pytest.mark.parametrize("retyped", ["exp_avg", "exp_avg_sq", "compensation_buffer", "grad"])
@pytest.mark.parametrize("param_dtype, state_dtype, other", [("float32", None, "int32"),
                                                             ("bfloat16", "bfloat16", "float16")])
def test_a_reused_plan_refuses_a_state_or_kept_gradient_retyped_in_place(retyped, param_dtype, state_dtype, other):
    """``x.data = x.data.view(<dtype of the same size>)`` keeps a tensor's address, layout and
    element count: on the call after, a state buffer, compensation buffer or kept gradient
    re-typed so is refused before any write, as a first call refuses it (the kernel would read
    and write the bits of the old type through the new one)."""
    param_type, other_type = getattr(torch, param_dtype), getattr(torch, other)
    state_type = torch.bfloat16 if state_dtype == "bfloat16" else torch.float32
    gen = torch.Generator().manual_seed(3)
    p = torch.randn(37, generator=gen).to(param_type)
    arrays = dict(grad=torch.randn(37, generator=gen).to(param_type),
                  exp_avg=torch.zeros(37, dtype=state_type), exp_avg_sq=torch.zeros(37, dtype=state_type),
                  compensation_buffer=torch.zeros(37, dtype=param_type))

    def call(step):
        fd.adamw_step(p, arrays["grad"], arrays["exp_avg"], arrays["exp_avg_sq"], step=step, lr=1e-2,
                      state_dtype=state_dtype, compensated=True, compensation_buffer=arrays["compensation_buffer"])

    for t in range(3):  # (from the third call, the plan's tensor guards check it)
        call(t)
    x = arrays[retyped]
    x.data = x.data.view(other_type)
    before = {name: t.view(torch.uint8).clone() for name, t in dict(arrays, param=p).items()}
    with pytest.raises(TypeError, match=rf"{retyped} must have the .* got {other}"):
        call(3)
    for name, t in dict(arrays, param=p).items():
        assert torch.equal(t.view(torch.uint8), before[name]), name
    # a first call with the same arrays refuses them alike
    p2 = p.clone()
    with pytest.raises(TypeError, match=rf"{retyped} must have the .* got {other}"):
        fd.adamw_step(p2, arrays["grad"], arrays["exp_avg"], arrays["exp_avg_sq"], step=2, lr=1e-2,
                      state_dtype=state_dtype, compensated=True, compensation_buffer=arrays["compensation_buffer"])


def test_a_tensor_guard_fails_on_every_change_the_passes_check():
    """``tensor_guard`` stands in for the reused plan's passes from its third call: it must
    fail on every change those passes see (and on no tensor as it was), and a plan must hold
    one for its written tensors and one for its gradients once new gradients are accepted."""
    from fastdecay import _update_plan

    def made(dtype=torch.float32):
        return torch.arange(12, dtype=dtype).reshape(3, 4)

    class Sub(torch.Tensor):
        pass

    x = made()
    guard = _update_plan.tensor_guard([x])
    assert guard is not None and guard([x]) and guard([made()])  # (another tensor like it passes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch's notes on its beta and deprecated layouts)
        changes = {
            "float64": made(torch.float64), "int32 view": made().view(torch.int32), "transposed": made().t(),
            "other shape": made().reshape(4, 3), "strided": torch.zeros(3, 8)[:, ::2], "neg bit": torch._neg_view(made()),
            "requires_grad": made().requires_grad_(), "subclass": made().as_subclass(Sub),
            "parameter": torch.nn.Parameter(made()), "meta": torch.empty(3, 4, device="meta"),
            "sparse": made().to_sparse(), "sparse_csr": made().to_sparse_csr(), "mkldnn": made().to_mkldnn(),
            "quantized": torch.quantize_per_tensor(made(), 0.1, 0, torch.quint8),
            "jagged": torch.nested.nested_tensor([torch.ones(3), torch.ones(2)], layout=torch.jagged),
            "not a tensor": None,
        }
    for name, other in changes.items():
        assert not guard([other]), name
    for name, t_ in (("t_", lambda y: y.t_()), ("resize_", lambda y: y.resize_(2, 2)),
                     ("as_strided_", lambda y: y.as_strided_((3, 4), (1, 3)))):
        y = made()
        t_(y)
        assert not guard([y]), name
    with torch.inference_mode():
        assert not guard([made()])  # (an inference tensor)
    seen = []
    torch.func.vmap(lambda y: seen.append(guard([y])) or y)(made().expand(2, 3, 4))  # (a batched tensor)
    assert seen == [False]
    assert not _update_plan._passes(guard, [x, x]) and not _update_plan._passes(None, [x])
    # a plan's guards, made once its passes accepted the tensors
    ps, bufs = [torch.randn(5) for _ in range(3)], [torch.zeros(5) for _ in range(3)]
    for t in range(3):
        fd.sgd_step(ps, [torch.randn(5) for _ in range(3)], step=t, lr=0.1, momentum=0.9, momentum_buffer=bufs)
    [plan] = [p for p in _update_plan._PLANS.values() if any(r() is ps[0] for r in p.refs)]
    assert plan.kept_guard is not None and plan.grad_guard is not None
    # and where the same gradients come back every call (zero_grad(set_to_none=False))
    ps, bufs, grads = ([torch.randn(5) for _ in range(3)] for _ in range(3))
    for t in range(3):
        fd.sgd_step(ps, grads, step=t, lr=0.1, momentum=0.9, momentum_buffer=bufs)
    [plan] = [p for p in _update_plan._PLANS.values() if any(r() is ps[0] for r in p.refs)]
    assert plan.grad_guard is not None and plan.ids[1] == tuple(map(id, grads))


@pytest.mark.parametrize("warm", [1, 4])
def test_a_reused_plan_refuses_what_a_first_call_refuses_after_changes_in_place(warm):
    """Changes in place that keep every address, on the plan's second call (its passes) or later
    (its guards, then its passes): a written tensor or a kept gradient given a pending neg bit
    (the kernels would write its raw bits), a shape changed at the same element count
    (``resize_``, ``unsqueeze_``, ``set_``), and gradients that are not tensors are refused as a
    first call refuses them, naming the array, with nothing written."""
    def fresh():
        p, g, buf = torch.randn(4, 4), torch.randn(4, 4), torch.zeros(4, 4)
        for t in range(warm):
            fd.sgd_step(p, g, step=t, lr=0.1, momentum=0.9, momentum_buffer=buf)
        return p, g, buf

    changes = {
        "param neg bit": (lambda p, g, b: setattr(p, "data", torch._neg_view(p.data)), TypeError, r"param .*neg"),
        "buffer neg bit": (lambda p, g, b: setattr(b, "data", torch._neg_view(b.data)), TypeError,
                           r"momentum_buffer .*neg"),
        "kept grad neg bit": (lambda p, g, b: setattr(g, "data", torch._neg_view(g.data)), TypeError, r"grad .*neg"),
        "buffer resized": (lambda p, g, b: b.resize_(2, 8), ValueError, r"momentum_buffer must have the shape"),
        "param unsqueezed": (lambda p, g, b: p.unsqueeze_(0), ValueError, r"must have the shape of its parameter"),
        "param set_": (lambda p, g, b: p.set_(p.untyped_storage(), 0, (2, 8), (8, 1)), ValueError,
                       r"must have the shape of its parameter"),
        "kept grad resized": (lambda p, g, b: g.resize_(16), ValueError, r"grad must have the shape"),
    }
    for name, (change, error, match) in changes.items():
        p, g, buf = fresh()
        change(p, g, buf)
        before = [t.clone() for t in (p, g, buf)]
        with pytest.raises(error, match=match):
            fd.sgd_step(p, g, step=warm, lr=0.1, momentum=0.9, momentum_buffer=buf)
        assert all(torch.equal(a, b) for a, b in zip((p, g, buf), before)), name
    for bad, match in ((np.ones((4, 4), np.float32), r"grad\[0\] must be the same kind of array"),
                       (None, r"grad\[0\] must be a NumPy")):
        p, buf = torch.randn(4, 4), torch.zeros(4, 4)
        for t in range(warm + 1):  # (new gradients each call)
            fd.sgd_step([p], [torch.randn(4, 4)], step=t, lr=0.1, momentum=0.9, momentum_buffer=[buf])
        before = p.clone(), buf.clone()
        with pytest.raises(TypeError, match=match):
            fd.sgd_step([p], [bad], step=warm + 1, lr=0.1, momentum=0.9, momentum_buffer=[buf])
        assert torch.equal(p, before[0]) and torch.equal(buf, before[1])


@pytest.mark.parametrize("layout", ["sparse_coo", "sparse_csr", "mkldnn", "nested"])
def test_a_reused_plan_refuses_gradients_without_strides_by_name(layout):
    """A gradient without strides or memory on a cached plan gets the first call's TypeError
    naming ``grad`` (not torch's own RuntimeError from a query it refuses), writing nothing."""
    make = {"sparse_coo": lambda: torch.ones(2, 3).to_sparse(), "sparse_csr": lambda: torch.ones(2, 3).to_sparse_csr(),
            "mkldnn": lambda: torch.ones(2, 3).to_mkldnn(),
            "nested": lambda: torch.nested.nested_tensor([torch.ones(3), torch.ones(3)])}[layout]
    p, buf = torch.ones(2, 3), torch.zeros(2, 3)
    for t in range(3):  # the plan, cached, and its guards
        fd.sgd_step(p, torch.ones(2, 3), step=t, lr=0.1, momentum=0.9, momentum_buffer=buf)
    before = p.clone(), buf.clone()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch's notes on its beta layouts)
        grad = make()
        with pytest.raises(TypeError, match="grad must be a"):
            fd.sgd_step(p, grad, step=3, lr=0.1, momentum=0.9, momentum_buffer=buf)
    assert torch.equal(p, before[0]) and torch.equal(buf, before[1])


def test_torch_refuses_a_nested_tensor_as_the_gradient_of_a_dense_parameter():
    """The optimizers' repeated step does not look for nested gradients (whose strides would
    end the process in the plan's guard): a ``.grad`` cannot be one. This holds torch to it,
    for each way a gradient is given."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch's notes on its beta layouts)
        nested = torch.nested.nested_tensor([torch.ones(3), torch.ones(3)])
    p = torch.nn.Parameter(torch.ones(2, 3))
    with pytest.raises(RuntimeError):
        p.grad = nested
    p.grad = torch.zeros(2, 3)
    with pytest.raises(RuntimeError):
        p.grad.data = nested
    with pytest.raises((RuntimeError, NotImplementedError)):
        p.grad.set_(nested)
    assert not p.grad.is_nested


@pytest.mark.parametrize("value", [list(range(100_000)), "x" * 100_000, np.arange(100_000.0).tolist()])
def test_refusals_show_a_huge_value_briefly(value):
    """An error names the argument and a short form of what it got, however large."""
    w = np.ones(3)
    for call in (lambda: fd.sgd_step(w, np.ones(3), step=value, lr=0.1),
                 lambda: fd.sgd_step(value, np.ones(3), step=0, lr=0.1),
                 lambda: fd.adamw_step(w, np.ones(3), np.zeros(3), np.zeros(3), step=0, lr=0.1, grad_scale=value),
                 lambda: fd.adamw_step(w, np.ones(3), np.zeros(3), np.zeros(3), step=0, lr=0.1, state_dtype=value)):
        with pytest.raises((TypeError, ValueError)) as err:
            call()
        assert len(str(err.value)) < 300 and ("step" in str(err.value) or "param" in str(err.value)
                                              or "grad_scale" in str(err.value) or "state_dtype" in str(err.value))
    assert np.array_equal(w, np.ones(3))


def test_state_dtype_takes_numpy_scalar_types():
    """``state_dtype`` takes the NumPy scalar type of its name, as NumPy's own ``dtype=`` does."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    for value, dtype in ((np.float32, np.float32), (ml_dtypes.bfloat16, ml_dtypes.bfloat16)):
        w, g = np.ones(5, np.float16), np.full(5, 0.5, np.float16)
        m, v = np.zeros(5, dtype), np.zeros(5, dtype)
        fd.adamw_step(w, g, m, v, step=0, lr=0.1, state_dtype=value)
        named = np.ones(5, np.float16), np.zeros(5, dtype), np.zeros(5, dtype)
        fd.adamw_step(named[0], g, named[1], named[2], step=0, lr=0.1, state_dtype=np.dtype(dtype).name)
        assert np.array_equal(w, named[0]) and np.array_equal(m, named[1]) and np.array_equal(v, named[2])
    with pytest.raises(ValueError, match="state_dtype must be None, 'float32' or 'bfloat16', got <class 'numpy.int8'>"):
        fd.adamw_step(np.ones(3), np.ones(3), np.zeros(3), np.zeros(3), step=0, lr=0.1, state_dtype=np.int8)


def test_strided_views_that_share_no_element_are_not_overlapping():
    """Interleaved views of one buffer (``a[::2]`` and ``a[1::2]``) span the same range of
    addresses but share no element: accepted, as parameters, as a gradient beside its
    parameter, and as new gradients on a reused plan, with torch's result (they were refused
    as overlapping). Views that do share an element are still refused, naming both."""
    t = torch.arange(24.0)
    params = [t[0::3], t[1::3]]
    ref = [p.detach().clone().requires_grad_() for p in params]
    opt = torch.optim.SGD(ref, lr=0.1, momentum=0.9, foreach=False)
    bufs = [torch.zeros(8), torch.zeros(8)]
    for step in range(3):
        grads = [torch.full((8,), 1.0 + step), torch.linspace(-1.0, 1.0, 8)]
        if step == 2:  # a new gradient interleaved with the parameters, read where they are written
            grads[0] = t[2::3].clone()
        for r, g in zip(ref, grads):
            r.grad = g.clone()
        opt.step()
        fd.sgd_step(params, grads, momentum_buffer=bufs, step=step, lr=0.1, momentum=0.9)
        for p, r in zip(params, ref):
            torch.testing.assert_close(p, r.detach(), rtol=0, atol=0)
    assert torch.equal(t[2::3], torch.arange(2.0, 24.0, 3.0))  # (the third view, never written)
    w = np.arange(12.0)
    fd.sgd_step(w[0::2], w[1::2], step=0, lr=0.5)  # the gradient interleaved with its parameter
    np.testing.assert_array_equal(w[0::2], np.arange(0.0, 12.0, 2.0) - 0.5 * np.arange(1.0, 12.0, 2.0))
    for views in ([w[0::2], w[2::2][:5]], [w[0::2], w[0:6]], [w[0::3], w[0::2]]):
        before = w.copy()
        with pytest.raises(ValueError, match=r"param\[1\] overlaps param\[0\]|param\[0\] overlaps param\[1\]"):
            fd.sgd_step(views, [np.ones(v.size) for v in views], step=0, lr=0.1)
        np.testing.assert_array_equal(w, before)
