"""float16 / bfloat16 parameters: math in float32, state in float32 or bfloat16, Kahan compensation.

torch is the reference where it has the same thing (its fused and foreach AdamW / SGD
on bfloat16 keep their state in bfloat16: ``state_dtype="bfloat16"`` here), compared
with torch's own tolerances for the dtype (``torch.testing.assert_close`` defaults).
Where torch has no equivalent (float32 state for 16-bit parameters), the reference is
torch's float32 optimizer with the parameter rounded to its 16-bit dtype after every
step — exactly "math and state in float32, parameter stored in 16 bits".
"""

import numpy as np
import pytest

import fastdecay as fd

torch = pytest.importorskip("torch")

STEPS = 100
N = 1037  # odd: a partial block and the scalar tails


def _problem(dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w0 = torch.randn(N, generator=gen).to(dtype)
    grads = [torch.randn(N, generator=gen).to(dtype) for _ in range(STEPS)]
    return w0, grads


def _torch_run(cls, w0, grads, **kw):
    p = w0.clone().requires_grad_()
    opt = cls([p], **kw)
    for g in grads:
        p.grad = g.clone()
        opt.step()
    return p.detach()


def _torch_rounded_run(cls, w0, grads, state=None, **kw):
    """torch in float32 (parameter and state), the parameter rounded to w0's dtype after each
    step (and the state to ``state`` where given)."""
    p = w0.float().requires_grad_()
    opt = cls([p], foreach=False, **kw)
    stored = w0.clone()
    for g in grads:
        with torch.no_grad():
            p.copy_(stored.float())
        p.grad = g.float()
        opt.step()
        stored = p.detach().to(w0.dtype)
        if state is not None:
            for value in opt.state[p].values():
                if value.dim():
                    value.copy_(value.to(state).float())
    return stored


def _ours_adam(w0, grads, state_dtype=None, **kw):
    w = w0.clone()
    sd = torch.bfloat16 if state_dtype == "bfloat16" else (torch.float32 if w0.dtype != torch.float32 else w0.dtype)
    m, v = torch.zeros(N, dtype=sd), torch.zeros(N, dtype=sd)
    for t, g in enumerate(grads):
        fd.adamw_step(w, g, m, v, step=t, state_dtype=state_dtype, **kw)
    return w


def _ours_sgd(w0, grads, state_dtype=None, **kw):
    w = w0.clone()
    sd = torch.bfloat16 if state_dtype == "bfloat16" else torch.float32
    buf = torch.zeros(N, dtype=sd)
    for t, g in enumerate(grads):
        fd.sgd_step(w, g, step=t, momentum_buffer=buf, state_dtype=state_dtype, **kw)
    return w


ADAM = dict(lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
SGD = dict(lr=1e-2, momentum=0.9, weight_decay=1e-3, nesterov=True)


def test_bf16_adamw_with_bf16_state_matches_torch_fused():
    w0, grads = _problem(torch.bfloat16)
    theirs = _torch_run(torch.optim.AdamW, w0, grads, fused=True, **ADAM)
    ours = _ours_adam(w0, grads, state_dtype="bfloat16", **ADAM)
    torch.testing.assert_close(ours, theirs)


def test_bf16_sgd_with_bf16_state():
    """torch has no SGD with float32 math on a bfloat16 buffer to compare with: its
    single-tensor and foreach SGD round every intermediate to bfloat16, and its fused CPU
    SGD on bfloat16 ends 0.77 (mean absolute) from the float32 run on this problem where
    the single-tensor path ends 0.014. So: equal to torch's float32 SGD with the weights
    and the buffer rounded to bfloat16 after every step, and no further from the float32
    run than torch's single-tensor bfloat16 SGD."""
    w0, grads = _problem(torch.bfloat16, 1)
    ours = _ours_sgd(w0, grads, state_dtype="bfloat16", **SGD)
    torch.testing.assert_close(ours, _torch_rounded_run(torch.optim.SGD, w0, grads, state=torch.bfloat16, **SGD))
    exact = _torch_run(torch.optim.SGD, w0.float(), [g.float() for g in grads], foreach=False, **SGD)
    single = _torch_run(torch.optim.SGD, w0, grads, foreach=False, **SGD)
    assert (ours.float() - exact).abs().mean() <= 1.1 * (single.float() - exact).abs().mean()


def test_bf16_adamw_is_closer_to_float32_than_torch_foreach():
    """torch's foreach AdamW on bfloat16 rounds every intermediate to bfloat16; fused
    kernels (torch's and ours) compute in float32 and round once per stored value."""
    w0, grads = _problem(torch.bfloat16, 7)
    exact = _torch_run(torch.optim.AdamW, w0.float(), [g.float() for g in grads], foreach=False, **ADAM)
    foreach = _torch_run(torch.optim.AdamW, w0, grads, foreach=True, **ADAM)
    ours = _ours_adam(w0, grads, state_dtype="bfloat16", **ADAM)
    assert (ours.float() - exact).abs().mean() < 0.5 * (foreach.float() - exact).abs().mean()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_16_bit_params_with_float32_state_match_float32_math_rounded_each_step(dtype):
    w0, grads = _problem(dtype, 2)
    torch.testing.assert_close(_ours_adam(w0, grads, **ADAM), _torch_rounded_run(torch.optim.AdamW, w0, grads, **ADAM))
    torch.testing.assert_close(_ours_sgd(w0, grads, **SGD), _torch_rounded_run(torch.optim.SGD, w0, grads, **SGD))


def test_float16_adamw_is_close_to_torch_fused_float16():
    """torch's fused AdamW keeps float16 moments; ours are float32: close, not equal."""
    w0, grads = _problem(torch.float16, 3)
    theirs = _torch_run(torch.optim.AdamW, w0, grads, fused=True, **ADAM)
    ours = _ours_adam(w0, grads, **ADAM)
    torch.testing.assert_close(ours.float(), theirs.float(), rtol=2e-2, atol=2e-2)


def test_numpy_float16_and_ml_dtypes_bfloat16_give_torch_s_bits():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    for torch_dtype, np_dtype in ((torch.float16, np.float16), (torch.bfloat16, ml_dtypes.bfloat16)):
        w0, grads = _problem(torch_dtype, 4)
        want = _ours_adam(w0, grads[:10], **ADAM)
        bits = w0.view(torch.int16).numpy()
        w = bits.copy().view(np_dtype)
        m, v = np.zeros(N, np.float32), np.zeros(N, np.float32)
        for t, g in enumerate(grads[:10]):
            fd.adamw_step(w, g.view(torch.int16).numpy().view(np_dtype), m, v, step=t, **ADAM)
        np.testing.assert_array_equal(w.view(np.int16), want.view(torch.int16).numpy())


def test_compensation_lets_small_bf16_updates_accumulate():
    """lr*g = 1e-4 is far below half a bfloat16 step at 1.0 (2**-8): plain bfloat16 stalls
    at 1.0, the compensated run follows the float32 run."""
    steps = 1000
    g32 = torch.ones(N)
    w32 = torch.ones(N)
    plain = torch.ones(N, dtype=torch.bfloat16)
    kahan = torch.ones(N, dtype=torch.bfloat16)
    comp = torch.zeros(N, dtype=torch.bfloat16)
    for t in range(steps):
        fd.sgd_step(w32, g32, step=t, lr=1e-4)
        fd.sgd_step(plain, g32.bfloat16(), step=t, lr=1e-4)
        fd.sgd_step(kahan, g32.bfloat16(), step=t, lr=1e-4, compensated=True, compensation_buffer=comp)
    assert torch.all(plain == 1.0)  # stalled
    np.testing.assert_allclose(w32.numpy(), 0.9, rtol=1e-4)
    # within one bfloat16 step (2**-8 below 1) of the float32 run; with what the buffer
    # holds, within 1 % of the distance travelled (the buffer is bfloat16 too)
    assert torch.all((kahan.float() - w32).abs() <= 2.0**-8)
    assert torch.all((kahan.float() + comp.float() - w32).abs() < 1e-3)


def test_compensated_adamw_tracks_float32():
    """AdamW on bfloat16 weights, lr 1e-4: compensated stays close to float32, plain drifts."""
    w0, grads = _problem(torch.float32, 5)
    w0 = w0.abs() + 1.0  # weights in [1, 4): one bfloat16 step there is 2**-7 .. 2**-5
    kw = dict(lr=1e-4, weight_decay=0.0)
    start = w0.bfloat16()
    w32 = _ours_adam(start.float(), [g.bfloat16().float() for g in grads], **kw)
    plain = _ours_adam(start, [g.bfloat16() for g in grads], **kw)
    kahan = start.clone()
    m, v, comp = torch.zeros(N), torch.zeros(N), torch.zeros(N, dtype=torch.bfloat16)
    for t, g in enumerate(grads):
        fd.adamw_step(kahan, g.bfloat16(), m, v, step=t, compensated=True, compensation_buffer=comp, **kw)
    exact_move = (w32 - start.float()).abs()
    plain_error = (plain.float() - w32).abs()
    kahan_error = (kahan.float() + comp.float() - w32).abs()
    assert plain_error.mean() > 0.5 * exact_move.mean()  # most of the motion is lost
    assert kahan_error.mean() < 0.05 * exact_move.mean()  # compensated keeps it


def test_compensation_and_state_dtype_are_checked():
    w = torch.ones(4, dtype=torch.bfloat16)
    g = torch.ones(4, dtype=torch.bfloat16)
    m, v = torch.zeros(4), torch.zeros(4)
    cases = [
        (ValueError, "state_dtype", dict(state_dtype="float16")),
        (ValueError, "compensation_buffer is required", dict(compensated=True)),
        (ValueError, "compensation_buffer is used only", dict(compensation_buffer=torch.zeros(4))),
        (TypeError, "compensation_buffer must have the dtype of its parameter",
         dict(compensated=True, compensation_buffer=torch.zeros(4))),
        (TypeError, "compensated must be True or False", dict(compensated="yes")),
    ]
    for error, match, kw in cases:
        with pytest.raises(error, match=match):
            fd.adamw_step(w, g, m, v, step=0, lr=0.1, **kw)
    with pytest.raises(TypeError, match=r"exp_avg must have the state dtype \(bfloat16\), got float32"):
        fd.adamw_step(w, g, m, v, step=0, lr=0.1, state_dtype="bfloat16")
    with pytest.raises(ValueError, match="state_dtype must be None for float64"):
        fd.adamw_step(w.double(), g.double(), m.bfloat16(), v.bfloat16(), step=0, lr=0.1, state_dtype="bfloat16")
    assert torch.all(w == 1) and torch.all(m == 0)


def test_float32_params_with_bf16_state():
    w0, grads = _problem(torch.float32, 6)
    ours = _ours_adam(w0, grads, state_dtype="bfloat16", **ADAM)
    ref = _ours_adam(w0, grads, **ADAM)
    torch.testing.assert_close(ours, ref, rtol=2e-2, atol=3e-3)
    assert not torch.equal(ours, ref)


def test_loops_that_prefer_wide_vectors_get_512_bit_registers_where_the_build_has_avx512():
    """The bfloat16 pair loops ask LLVM for 512-bit vectors (``intrinsics.prefer_wide_vectors``, a
    function attribute llvmlite knows no name for): a loop of float32 lanes compiled with it uses
    zmm registers where Numba builds for AVX-512, and without it, on this CPU or others, LLVM's
    own width; ``intrinsics.wide_vectors`` says which the build has (the Adam pair loop's choice of
    the reciprocal). A llvmlite that dropped the attribute would fail here, not slow down unseen."""
    from numba import njit

    from fastdecay._cpu.intrinsics import prefer_wide_vectors, wide_vectors

    def loop_of(prefer):
        @njit(error_model="numpy")
        def loop(w, g):
            if prefer:
                prefer_wide_vectors()
            for i in range(w.shape[0]):
                w[i] = w[i] * np.float32(0.9) + g[i] / (np.sqrt(w[i] * w[i]) + np.float32(1e-8))

        return loop

    wide = loop_of(True)
    w, g = np.linspace(0.5, 1.5, 1000, dtype=np.float32), np.ones(1000, np.float32)
    expected = w.copy()
    loop_of(False)(expected, g)
    got = w.copy()
    wide(got, g)
    np.testing.assert_array_equal(got, expected)  # (the same operations lane by lane)
    asm = "\n".join(wide.inspect_asm().values())
    if not wide_vectors():
        pytest.skip("Numba builds for a CPU without AVX-512 here: the attribute asks for nothing it can give")
    assert "zmm" in asm


def test_bfloat16_pairs_round_and_widen_as_single_elements():
    """Two bfloat16 elements read and written as one 32-bit word (``storage.PAIR``: the
    kernels' loops where every stream is bfloat16) give the bits of ``widen`` and
    ``narrow`` one element at a time, for random float32 bit patterns and the edges of the
    rounding: ties either way, the largest finite values rounding to infinity, subnormals,
    infinities and NaNs whose payload would carry into the sign or round to infinity."""
    from numba import njit

    from fastdecay._cpu.storage import high_half, low_half, narrow, pair_of, widen

    @njit
    def rounded(values, pairs, singles):
        like = np.uint16(0)
        for i in range(values.shape[0] // 2):
            pairs[i] = pair_of(values[2 * i], values[2 * i + 1])
            singles[2 * i] = narrow(values[2 * i], like)
            singles[2 * i + 1] = narrow(values[2 * i + 1], like)

    @njit
    def widened(pairs, halves, singles):
        for i in range(pairs.shape[0]):
            halves[2 * i], halves[2 * i + 1] = low_half(pairs[i]), high_half(pairs[i])
        as_elements = pairs.view(np.uint16)
        for i in range(as_elements.shape[0]):
            singles[i] = widen(as_elements[i])

    edges = np.array([0x3F808000, 0x3F818000, 0x3F807FFF, 0x3F808001, 0x7F7F8000, 0x7F7FFFFF, 0xFF7FFFFF,
                      0x00008000, 0x00018000, 0x807FFFFF, 0x00000001, 0x7F800000, 0xFF800000, 0x7FC00000,
                      0x7F800001, 0x7F807FFF, 0x7FFF8000, 0x7FFFFFFF, 0xFFFFFFFF, 0xFFC00000, 0, 0x80000000],
                     dtype=np.uint32)
    bits = np.concatenate([edges, edges[::-1], np.random.default_rng(0).integers(0, 2**32, 200_000, dtype=np.uint32)])
    values = bits.view(np.float32)
    pairs, singles = np.zeros(len(values) // 2, np.uint32), np.zeros(len(values), np.uint16)
    rounded(values, pairs, singles)
    np.testing.assert_array_equal(pairs.view(np.uint16), singles)
    assert singles[edges.tolist().index(0x7FFFFFFF)] == 0x7FC0  # a NaN stays a NaN, never -0
    halves, ones = np.zeros(len(values), np.float32), np.zeros(len(values), np.float32)
    widened(pairs, halves, ones)
    np.testing.assert_array_equal(halves.view(np.uint32), ones.view(np.uint32))


def _specials(n, gen):
    """Values in bfloat16 with the awkward ones spread through: NaN, infinities, subnormals, zeros."""
    x = torch.randn(n, generator=gen)
    at = torch.randperm(n, generator=gen)[:12]
    x[at] = torch.tensor([float("nan"), float("inf"), -float("inf"), 1e-39, -3e-40, 0.0, -0.0, 1e38, -1e38,
                          9.2e-41, 2.0**-126, 2.0**-133])
    return x.bfloat16()


def _aligned_and_not(x):
    """``x`` twice: in its own (aligned) memory, and as a view starting at an odd element."""
    base = torch.zeros(x.numel() + 1, dtype=x.dtype)
    offset = base[1:]
    offset.copy_(x)
    assert offset.data_ptr() % 4 == 2
    return x.clone(), offset


@pytest.mark.parametrize("compensated", [False, True])
@pytest.mark.parametrize("rule", ["adamw", "adam-l2-maximize-scaled", "sgd", "nesterov", "lion"])
def test_bfloat16_pairs_give_the_bits_of_the_element_loops(rule, compensated):
    """Where parameters and state are bfloat16 the kernels update two elements a word when
    every stream starts 4-byte aligned and one at a time otherwise: the same values laid out
    both ways give the same bits after every step (weights, state and compensation), over two
    blocks of the kernels and an odd last element, with NaNs, infinities and subnormals among
    the weights and gradients."""
    from fastdecay._cpu.storage import BLOCK

    n, steps = 2 * BLOCK + 7, 6
    gen = torch.Generator().manual_seed(11)
    w = _aligned_and_not(_specials(n, gen))
    states = [_aligned_and_not(torch.randn(n, generator=gen).abs().bfloat16()) for _ in range(2)]
    comp = _aligned_and_not(torch.zeros(n, dtype=torch.bfloat16))
    grads = [_aligned_and_not(_specials(n, gen)) for _ in range(steps)]
    for t in range(steps):
        for way in (0, 1):
            g, (m, v) = grads[t][way], (s[way] for s in states)
            kw = dict(state_dtype="bfloat16", compensated=compensated,
                      compensation_buffer=comp[way] if compensated else None)
            if rule.startswith("adam"):
                kw |= (dict(decoupled=False, maximize=True, grad_scale=2.0**12) if rule != "adamw" else {})
                fd.adamw_step(w[way], g, m, v, step=t, lr=1e-2, weight_decay=0.1, **kw)
            elif rule == "lion":
                fd.lion_step(w[way], g, m, step=t, lr=1e-3, weight_decay=0.1, **kw)
            else:
                fd.sgd_step(w[way], g, step=t, lr=1e-2, momentum=0.9, weight_decay=1e-3, nesterov=rule == "nesterov",
                            momentum_buffer=m, **kw)
        for aligned, offset in (w, *states, comp):
            torch.testing.assert_close(aligned.view(torch.int16), offset.view(torch.int16), rtol=0, atol=0)
    assert w[0].isnan().any() and w[0].isfinite().sum() > n // 2  # (the specials were carried through)
    assert (comp[0] != 0).any() == compensated


@pytest.mark.parametrize("state", ["bfloat16", "float32"])
@pytest.mark.parametrize("rule", ["sgd", "adam", "lion"])
def test_compensated_loops_of_16_bit_parameters_compile_to_vector_code(rule, state):
    """A compensated step of 16-bit parameters runs a copy of its rule's loop with the
    compensation flag a constant: read at run time, the store to the buffer under it kept
    LLVM from vectorizing the loop (scalar code, 4-47x slower; bench/RESULTS.md). Checked in
    the machine code of that copy (x86: packed float32 arithmetic on 256- or 512-bit
    registers), not by timing."""
    import platform
    import re

    from numba import njit

    from fastdecay._cpu import rules

    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("the check reads x86 machine code")
    loop = njit(error_model="numpy")(getattr(rules, f"_{rule}_kahan").py_func)
    n = 64
    params = [np.zeros(n, np.uint16) for _ in range(2)]  # (bfloat16 parameter and gradient)
    buffers = [np.zeros(n, np.uint16 if state == "bfloat16" else np.float32) for _ in range(2 if rule == "adam" else 1)]
    comp = np.zeros(n, np.uint16)
    one = np.float32(1.0)
    scalars = {"sgd": 7, "adam": 8, "lion": 6}[rule]
    flags = {"sgd": (True, False, False), "adam": (False,), "lion": (False,)}[rule]
    loop(*params, *buffers, comp, one, *[np.float32(0.5)] * scalars, *flags)
    machine_code = loop.inspect_asm(loop.signatures[0])
    assert re.search(r"\bv(mul|add|sub|fmadd\d+)ps\s+%[yz]mm", machine_code)


GENERAL_CASES = {  # rule -> (call, state buffers), every call at a small rate so the compensation holds bits
    "sgd": (lambda w, g, s, t, **kw: fd.sgd_step(w, g, step=t, lr=1e-4, weight_decay=1e-2, **kw), 0),
    "momentum": (lambda w, g, s, t, **kw: fd.sgd_step(w, g, step=t, lr=1e-4, momentum=0.9, momentum_buffer=s[0],
                                                      **kw), 1),
    "nesterov": (lambda w, g, s, t, **kw: fd.sgd_step(w, g, step=t, lr=1e-4, momentum=0.9, nesterov=True,
                                                      weight_decay=1e-2, momentum_buffer=s[0], **kw), 1),
    "adamw": (lambda w, g, s, t, **kw: fd.adamw_step(w, g, s[0], s[1], step=t, lr=1e-5, **kw), 2),
    "amsgrad": (lambda w, g, s, t, **kw: fd.adamw_step(w, g, s[0], s[1], step=t, lr=1e-5, amsgrad=True,
                                                       max_exp_avg_sq=s[2], maximize=True, **kw), 3),
    "lion": (lambda w, g, s, t, **kw: fd.lion_step(w, g, s[0], step=t, lr=1e-6, weight_decay=0.1, **kw), 1),
}


@pytest.mark.parametrize("grad_scale", [None, 3.0])
@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
@pytest.mark.parametrize("rule", list(GENERAL_CASES))
def test_compensated_steps_store_the_plain_steps_update_by_kahan_summation(rule, dtype, grad_scale):
    """A compensated step computes the update of the plain step and stores it by Kahan
    summation: from the same weights, state and gradients, a plain step of the weights in
    the math dtype gives ``new`` (and the state, bit for bit); the compensated one stores
    ``old + y`` rounded to the parameter dtype with y = (new - old) + c, and keeps
    c = y - (stored - old). Step after step, the plain step restarted from the compensated
    one's values; float32 and float64 parameters and AMSGrad run the general kernels (the
    flags but compensation read at run time), bfloat16 the 16-bit copies but for AMSGrad;
    a gradient scale of 3 divides."""
    call, n_state = GENERAL_CASES[rule]
    param = getattr(torch, dtype)
    math = torch.float64 if dtype == "float64" else torch.float32
    gen = torch.Generator().manual_seed(5)
    n = 2053  # (a vector loop's remainder, two threads' parts)
    w = (torch.randn(n, generator=gen, dtype=torch.float64) + 4.0).to(param)
    comp = torch.zeros(n, dtype=param)
    state = [torch.zeros(n, dtype=math) for _ in range(n_state)]
    for t in range(6):
        g = torch.randn(n, generator=gen, dtype=torch.float64).to(param)
        scaled = dict(grad_scale=grad_scale) if grad_scale else {}
        old, carried, plain_state = w.to(math), comp.to(math), [s.clone() for s in state]
        new = old.clone()
        call(new, g.to(math), plain_state, t, **scaled)
        call(w, g, state, t, compensated=True, compensation_buffer=comp, **scaled)
        y = (new - old) + carried
        stored = (old + y).to(param)
        kept = (y - (stored.to(math) - old)).to(param)
        for got, want in ((w, stored), (comp, kept), *zip(state, plain_state)):
            assert torch.equal(got.view(-1), want.view(-1)) and got.dtype == want.dtype, (t, rule)
    if dtype == "bfloat16":  # (with float32 / float64 math in the parameters' own dtype it holds nothing)
        assert (comp != 0).sum() > n // 10



@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("rule", ["sgd", "adamw"])
def test_a_weight_that_overflows_is_stored_as_without_compensation(rule, dtype):
    """Where the weight or its step is not finite (an update past the dtype's range, an inf or
    nan gradient), a compensated step stores what the plain step stores and keeps no
    compensation: the Kahan sum's (inf - old) made the compensation -inf or nan, and the next
    step's inf - inf turned an infinite weight into nan. Odd and even lengths (bfloat16
    pairs and their last element), finite elements beside them compensated as before."""
    param = getattr(torch, dtype)
    big = torch.finfo(param).max
    for n in (5, 6):
        start = torch.full((n,), 1.0, dtype=torch.float64)
        start[0], start[1] = big * 0.99, -big * 0.99
        grads = []
        for t in range(4):
            g = torch.full((n,), 1e-3, dtype=torch.float64)
            g[0], g[1] = (-big, big) if t == 0 else (1.0, 1.0)  # (0 and 1 overflow at step 0, then stay)
            g[2] = float("inf") if t == 1 else 1e-3
            g[3] = float("nan") if t == 2 else 1e-3
            grads.append(g.to(param))
        runs = []
        for compensated in (False, True):
            w, comp = start.to(param), torch.zeros(n, dtype=param)
            state = [torch.zeros(n, dtype=torch.float32) for _ in range(2)]
            extra = dict(compensated=True, compensation_buffer=comp) if compensated else {}
            for t, g in enumerate(grads):
                if rule == "sgd":
                    fd.sgd_step(w, g, step=t, lr=1.0, **extra)
                else:
                    fd.adamw_step(w, g, state[0], state[1], step=t, lr=1.0, eps=1e-30, **extra)
            runs.append((w.double(), comp.double()))
        (plain, _), (kahan, comp) = runs
        lost = ~torch.isfinite(plain)
        # SGD: +inf, -inf (overflows), -inf (the inf gradient), nan; Adam: nan where a gradient was
        assert lost.tolist() == [True] * 4 + [False] * (n - 4) if rule == "sgd" else [False] * 2 + [True] * 2 + [
            False] * (n - 4)
        torch.testing.assert_close(kahan[lost], plain[lost], rtol=0, atol=0, equal_nan=True)
        assert torch.all(comp[lost] == 0) and torch.isfinite(kahan[~lost]).all()


def test_amsgrad_keeps_a_nan_second_moment_as_torch_does():
    """torch.maximum keeps a nan: so does max_exp_avg_sq (a comparison v > vmax is false for nan)."""
    w, m, v, vmax = np.ones(3), np.zeros(3), np.zeros(3), np.zeros(3)
    p = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    opt = torch.optim.AdamW([p], lr=0.1, amsgrad=True, foreach=False)
    for t, g in enumerate([[1.0, 1.0, 1.0], [np.nan, 2.0, 1.0], [1.0, np.nan, 1.0]]):
        fd.adamw_step(w, np.array(g), m, v, step=t, lr=0.1, amsgrad=True, max_exp_avg_sq=vmax)
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    np.testing.assert_array_equal(vmax, opt.state[p]["max_exp_avg_sq"].numpy())
    assert np.isnan(vmax[:2]).all() and np.isfinite(vmax[2])


def test_the_bound_a_16_bit_store_overflows_at_is_where_rounding_reaches_inf():
    """``storage.rounds_to_inf``: the smallest float32 magnitude that rounds to inf in
    bfloat16 (also a pair of them) and float16; the float32 just below it stays finite."""
    from fastdecay._cpu.storage import rounds_to_inf

    for view, dtype in ((np.uint16(0), torch.bfloat16), (np.uint32(0), torch.bfloat16), (np.int16(0), torch.float16)):
        bound = rounds_to_inf(view)
        below = np.nextafter(bound, np.float32(0.0))
        rounded = torch.tensor([bound, -bound, below, -below], dtype=torch.float32).to(dtype).float()
        assert rounded[:2].tolist() == [np.inf, -np.inf] and torch.isfinite(rounded[2:]).all()
    assert rounds_to_inf(np.float32(0)) == np.inf and rounds_to_inf(0.0) == np.inf
