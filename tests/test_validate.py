"""The shared argument checks (fastdecay._validate) and their use at every entry point:
complex, datetime, object and boolean values where real numbers are meant are refused
with the argument's name (never truncated with a warning), before anything is written."""

import re
import warnings

import numpy as np
import pytest
import torch

import fastdecay as fd
from fastdecay import _validate as V

COMPLEX = [
    pytest.param(1 + 2j, id="python-complex"),
    pytest.param(np.complex128(0.1 + 0j), id="numpy-complex-scalar"),
    pytest.param(np.array(0.1 + 0j), id="numpy-complex-0d"),
    pytest.param(np.array([0.1 + 1j, 0.2]), id="numpy-complex-array"),
    pytest.param(torch.tensor(0.1 + 0j), id="torch-complex"),
]
NOT_REAL = COMPLEX + [
    pytest.param(np.datetime64("2026-01-01"), id="datetime64"),
    pytest.param(np.array([1, 2], dtype="timedelta64[s]"), id="timedelta64"),
    pytest.param(np.array([0.1, None], dtype=object), id="object-array"),
    pytest.param(True, id="bool"),
    pytest.param(np.array([True, False]), id="bool-array"),
    pytest.param("0.1", id="string"),
]


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    # a truncation to the real part would come with NumPy's ComplexWarning: none may pass
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _scalar(value):
    """The scalar-shaped members of NOT_REAL (entry points that take one number)."""
    return np.ndim(value) == 0 or isinstance(value, (complex, bool))


# ----------------------------------------------------------------------------- the checks themselves


@pytest.mark.parametrize("value", NOT_REAL)
def test_real_array_refuses_what_is_not_real_numbers(value):
    with pytest.raises(TypeError, match="^gamma must be"):
        V.real_array("gamma", value)


@pytest.mark.parametrize("value", NOT_REAL)
def test_real_refuses_what_is_not_a_real_number(value):
    with pytest.raises(TypeError, match="^eps must be"):
        V.real("eps", value)


@pytest.mark.parametrize("value, expected", [
    (0.5, 0.5), (3, 3.0), (np.float32(0.25), 0.25), (np.int64(2), 2.0), (np.array(1.5), 1.5),
    (torch.tensor(0.5, dtype=torch.float64), 0.5), (torch.tensor(0.5, dtype=torch.bfloat16), 0.5),
])
def test_real_accepts_real_scalars_of_any_library(value, expected):
    assert V.real("x", value) == expected


@pytest.mark.parametrize("call, error, needle", [
    (lambda: V.real("lr", -0.1, low=0.0), ValueError, "lr must be >= 0, got -0.1"),
    (lambda: V.real("lr", float("nan"), low=0.0), ValueError, "lr must be a finite number >= 0, got nan"),
    (lambda: V.real("b", 1.0, low=0.0, high=1.0, high_open=True), ValueError, "b must be >= 0 and < 1, got 1.0"),
    (lambda: V.real("lr", 10**400), ValueError, "lr must be a finite number, got an integer of 401 digits"),
    (lambda: V.real("lr", np.ones(3)), TypeError, "lr must be a real number, got an array of shape (3,)"),
    (lambda: V.integer("steps", 2.5), ValueError, "steps must be an integer, got 2.5"),
    (lambda: V.integer("steps", -1), ValueError, "steps must be >= 0, got -1"),
    (lambda: V.integer("steps", 2**64, high=2**32), ValueError, "steps must be < 2**32, got 18446744073709551616"),
    (lambda: V.integer("steps", "3"), TypeError, "steps must be an integer, got '3'"),
    (lambda: V.step("t", 10**400), ValueError, "t must be an integer step from 0 to 2**53, got an integer of 401 digits"),
    (lambda: V.step("t", -2), ValueError, "t must be a non-negative step, got -2"),
    (lambda: V.flag("cycle", 1), TypeError, "cycle must be True or False, got 1"),
    (lambda: V.choice("mode", "x", ("a", "b")), ValueError, "mode must be one of ('a', 'b'), got 'x'"),
    (lambda: V.betas(0.9), TypeError, "betas must be a pair (beta1, beta2)"),
    (lambda: V.betas((0.9, 1 + 0j)), TypeError, "betas[1] must be a real number"),
    (lambda: V.float_dtype("dtype", np.int32), TypeError, "dtype must be float32 or float64"),
    (lambda: V.schedule("s", 0.1), TypeError, "s must be a fastdecay Schedule, got 0.1"),
    (lambda: V.schedules("schedules", 0.1), TypeError, "schedules must be a list of fastdecay Schedules, got 0.1"),
    (lambda: V.schedules("schedules", []), ValueError, "schedules must hold at least one schedule"),
    (lambda: V.steps_array("t", [1, 10**400]), ValueError, "t must be an integer step from 0 to 2**53"),
    (lambda: V.step_sequence("m", [3, 1], strict=False), ValueError, "m must be sorted"),
])
def test_messages_name_the_argument_show_the_value_and_say_what_is_valid(call, error, needle):
    with pytest.raises(error) as info:
        call()
    assert needle in str(info.value)


def test_real_array_is_a_read_only_float64_copy():
    given = np.array([1, 2, 3], dtype=np.int32)
    arr = V.real_array("x", given)
    assert arr.dtype == np.float64 and not arr.flags.writeable
    assert not np.shares_memory(arr, given)


def test_tensors_that_hold_no_dense_numbers_are_refused_by_name():
    sparse = torch.ones(3).to_sparse()
    with pytest.raises(TypeError, match="curvature must be a dense"):
        V.real_array("curvature", sparse)
    with pytest.raises(TypeError, match="curvature must be a tensor on the CPU or a CUDA device"):
        V.real_array("curvature", torch.ones(3, device="meta"))


# ----------------------------------------------------------------------------- every entry point


@pytest.mark.parametrize("value", NOT_REAL)
@pytest.mark.parametrize("factory, name", [
    (lambda v: fd.exponential(v, gamma=0.9), "lr"),
    (lambda v: fd.exponential(0.1, gamma=v), "gamma"),
    (lambda v: fd.step(0.1, 0.5, v), "period"),
    (lambda v: fd.cosine(0.1, 100, min_lr=v), "min_lr"),
    (lambda v: fd.one_cycle(0.1, 100, pct_start=v), "pct_start"),
    (lambda v: fd.constant(v), "lr"),
])
def test_schedule_parameters_refuse_non_real_values(factory, name, value):
    with pytest.raises(TypeError, match=f"^{name} must be"):
        factory(value)


@pytest.mark.parametrize("value", COMPLEX)
def test_schedule_steps_refuse_complex(value):
    with pytest.raises(TypeError, match="^t must be"):
        fd.cosine(1.0, 10)(value)


def _sgd_arrays():
    return np.linspace(1.0, 2.0, 5), np.linspace(-1.0, 1.0, 5), np.full(5, 0.5)


@pytest.mark.parametrize("value", [v for v in NOT_REAL if _scalar(v.values[0])])
@pytest.mark.parametrize("name", ["lr", "weight_decay", "momentum", "dampening"])
def test_sgd_step_refuses_non_real_scalars_before_any_write(name, value):
    w, g, buf = _sgd_arrays()
    before = [w.copy(), g.copy(), buf.copy()]
    kwargs = dict(step=3, lr=0.1, momentum=0.9, momentum_buffer=buf, weight_decay=0.01)
    kwargs[name] = value
    with pytest.raises(TypeError, match=f"^{name} must be"):
        fd.sgd_step(w, g, **kwargs)
    for a, b in zip([w, g, buf], before):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("value", [np.complex128(1 + 0j), np.array(1 + 0j), torch.tensor(1 + 0j),
                                   np.array(1, dtype="datetime64[s]")])
@pytest.mark.parametrize("name", ["grad_scale", "found_inf"])
def test_grad_scale_and_found_inf_refuse_complex_before_any_write(name, value):
    w, g, buf = _sgd_arrays()
    before = [w.copy(), g.copy(), buf.copy()]
    with pytest.raises(TypeError, match=f"^{name} must be"):
        fd.sgd_step(w, g, step=3, lr=0.1, momentum=0.9, momentum_buffer=buf, **{name: value})
    for a, b in zip([w, g, buf], before):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("value", [v for v in COMPLEX if _scalar(v.values[0])])
@pytest.mark.parametrize("name", ["lr", "weight_decay", "eps", "betas"])
def test_adamw_step_refuses_complex_before_any_write(name, value):
    w, g, m, v = np.ones(4), np.full(4, 0.5), np.full(4, 0.1), np.full(4, 0.2)
    before = [x.copy() for x in (w, g, m, v)]
    kwargs = dict(step=2, lr=0.1, weight_decay=0.01, eps=1e-8, betas=(0.9, 0.999))
    kwargs[name] = (0.9, value) if name == "betas" else value
    with pytest.raises(TypeError, match=f"^{name}"):
        fd.adamw_step(w, g, m, v, **kwargs)
    for a, b in zip([w, g, m, v], before):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("value", NOT_REAL)
@pytest.mark.parametrize("name", ["curvature", "w0", "schedule", "weight_decay", "noise"])
def test_simulate_refuses_non_real_values(name, value):
    kwargs = dict(curvature=np.ones((2, 3)), schedule=0.1, steps=3)
    kwargs[name] = value
    with pytest.raises(TypeError, match=f"^{name} must be"):
        fd.simulate(kwargs.pop("curvature"), kwargs.pop("schedule"), **kwargs)


@pytest.mark.parametrize("value", NOT_REAL)
def test_diagnostics_refuse_non_real_curvature_barrier_and_c(value):
    s = fd.step(0.1, 0.5, 10)
    with pytest.raises(TypeError, match="^curvature must be"):
        fd.stability_onset(s, value, max_steps=10)
    with pytest.raises(TypeError, match="^curvature must be"):
        fd.discretization_divergence(s, value, 10)
    with pytest.raises(TypeError, match="^barrier must be"):
        fd.escape_probability(s, value, 1.0, 10)
    with pytest.raises(TypeError, match="^c must be"):
        fd.escape_probability(s, 1.0, value, 10)


@pytest.mark.parametrize("value", COMPLEX)
def test_constant_shrinkage_refuses_complex(value):
    with pytest.raises(TypeError, match="^weight_decay must be"):
        fd.constant_shrinkage(fd.exponential(0.1, gamma=0.9), value)
    with pytest.raises(TypeError, match="^reference_lr must be"):
        fd.constant_shrinkage(fd.cosine(0.1, 10), 0.01, total_steps=10, reference_lr=value)


def test_torch_optimizers_refuse_complex_hyperparameters():
    from fastdecay.torch import SGD, AdamW

    p = torch.nn.Parameter(torch.ones(3))
    with pytest.raises(TypeError, match="lr"):
        SGD([p], lr=0.1 + 0j)
    with pytest.raises(TypeError, match="betas"):
        AdamW([p], lr=0.1, betas=(0.9, np.complex128(0.99)))


# ----------------------------------------------------------------------------- constant_shrinkage's reference rate


def test_constant_shrinkage_refuses_a_zero_reference_rate_and_says_to_pass_reference_lr():
    lr = fd.warmup(fd.cosine(1e-3, 100), 10)  # 0 at step 0: lambda would be 0 everywhere
    with pytest.raises(ValueError, match="pass reference_lr="):
        fd.constant_shrinkage(lr, 0.01, total_steps=110)
    with pytest.raises(ValueError, match="reference_lr must be > 0"):
        fd.constant_shrinkage(lr, 0.01, total_steps=110, reference_lr=0.0)
    wd = fd.constant_shrinkage(lr, 0.01, total_steps=110, reference_lr=1e-3)
    t = np.arange(1, 110)
    np.testing.assert_allclose(lr(t) * wd(t), 0.01 * 1e-3, rtol=1e-12)
    assert wd(0) == 0.0 and np.all(wd(t) > 0)


@pytest.mark.parametrize("lr", [
    fd.exponential(0.1, gamma=0.97), fd.step(0.1, 0.5, 7), fd.multistep(0.1, 0.3, [5, 20]),
    fd.inverse_time(0.1, 0.2), fd.piecewise([4, 9], [0.1, 0.05, 0.01]), fd.constant(0.1),
])
def test_constant_shrinkage_reference_lr_keeps_the_closed_forms(lr):
    wd = fd.constant_shrinkage(lr, 0.02, reference_lr=0.3)
    assert wd.segments.shape[-2] <= 4   # a closed form, not a table of one segment a step
    t = np.arange(40)
    np.testing.assert_allclose(lr(t) * wd(t), 0.02 * 0.3, rtol=1e-12)


# ----------------------------------------------------------------------------- errors that used to be unclear


@pytest.mark.parametrize("call, error, needle", [
    (lambda: fd.stack(0.1), TypeError, "schedules must be a list of fastdecay Schedules, got 0.1"),
    (lambda: fd.stack([fd.constant(0.1), 0.2]), TypeError, "schedules[1] must be a fastdecay Schedule, got 0.2"),
    (lambda: fd.join(None, [3]), TypeError, "schedules must be a list of fastdecay Schedules, got None"),
    (lambda: fd.step(0.1, 0.5, 10)(10**400), ValueError, "t must be an integer step from 0 to 2**53"),
    (lambda: fd.step(0.1, 0.5, 10)([0, 10**400]), ValueError, "t must be an integer step from 0 to 2**53"),
    (lambda: fd.step(0.1, 0.5, 10)(2**53 + 1), ValueError, "t must be an integer step from 0 to 2**53, got 9007199254740993"),
    (lambda: fd.step(0.1, 0.5, 10)(np.array([0, 2**63 - 1])), ValueError,
     "t must hold integer steps from 0 to 2**53, got 9223372036854775807"),
    (lambda: fd.step(0.1, 0.5, 10)(np.array([1e20])), ValueError, "t must hold integer steps from 0 to 2**53, got 1e+20"),
    (lambda: fd.step(0.1, 0.5, 10).table(np.array([2**60], dtype=np.uint64)), ValueError,
     "n_or_steps must hold integer steps from 0 to 2**53, got 1152921504606846976"),
    (lambda: fd.step(0.1, 0.5, 10**400), ValueError, "period must be a finite number"),
    (lambda: fd.quantization_gap(fd.step(0.1, 0.5, 10), 10**400), ValueError, "t must be an integer step from 0 to 2**53"),
    (lambda: fd.cosine(1.0, 10).table(2**52), ValueError, "n_or_steps=4503599627370496 asks for a result"),
    (lambda: fd.cosine(1.0, 10).table(3, out=torch.zeros(3, dtype=torch.bfloat16)), TypeError,
     "out must be float32 or float64, got dtype torch.bfloat16"),
    (lambda: fd.cosine(1.0, 10).table(3, out=torch.zeros(3).to_sparse()), TypeError, "out must be a dense"),
    (lambda: fd.cosine(1.0, 10).table(3, out=np.zeros(3, complex)), TypeError, "out must be float32 or float64"),
    (lambda: fd.cosine(1.0, 10).table(3, out=[0.0] * 3), TypeError, "out must be a NumPy array or a CPU torch"),
    (lambda: fd.cosine(1.0, 10).table(3, dtype=np.float16), TypeError, "dtype must be float32 or float64"),
    (lambda: fd.simulate(torch.ones(2, 3).to_sparse(), 0.1, steps=3), TypeError, "curvature must be a dense"),
    (lambda: fd.simulate(torch.ones(2, 3, device="meta"), 0.1, steps=3), TypeError,
     "curvature must be a tensor on the CPU or a CUDA device"),
    (lambda: fd.simulate(np.ones(3), 0.1, steps=10**400), ValueError, "steps must be < 2**32"),
])
def test_refusals_name_the_argument_and_what_it_accepts(call, error, needle):
    with pytest.raises(error) as info:
        call()
    assert needle in str(info.value)


def test_bfloat16_values_are_read_as_the_numbers_they_hold():
    lam = torch.tensor([[0.5, 1.5]], dtype=torch.bfloat16)
    got = fd.simulate(lam, 0.1, steps=5).w
    want = fd.simulate(lam.to(torch.float64), 0.1, steps=5).w
    assert torch.equal(got, want)
    assert fd.exponential(torch.tensor(0.5, dtype=torch.bfloat16), gamma=0.5)(1) == 0.25


@pytest.mark.parametrize("value", COMPLEX)
@pytest.mark.parametrize("call, name", [
    (lambda v: fd.expected_loss(v, fd.constant(0.1), steps=5), "curvature"),
    (lambda v: fd.expected_loss(np.ones(3), fd.constant(0.1), steps=5, noise=v), "noise"),
    (lambda v: fd.expected_loss(np.ones(3), fd.constant(0.1), steps=5, w0=v), "w0"),
    (lambda v: fd.expected_loss(np.ones(3), fd.constant(0.1), steps=5, batch_size=v), "batch_size"),
    (lambda v: fd.expected_loss(np.ones(3), v, steps=5), "schedule"),
    (lambda v: fd.tabulated(np.atleast_1d(v)), "values"),
    (lambda v: fd.product(fd.constant(0.1), v), "schedules[1]"),
    (lambda v: fd.from_function(lambda t: v, 3), "f"),
])
def test_newer_entry_points_refuse_complex_too(call, name, value):
    with pytest.raises(TypeError, match=f"^{re.escape(name)}"):
        call(value)


def test_ml_dtypes_bfloat16_arrays_are_read_as_numbers():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    lam = np.array([[0.5, 1.5]], dtype=ml_dtypes.bfloat16)
    np.testing.assert_array_equal(V.real_array("curvature", lam), [[0.5, 1.5]])
    np.testing.assert_array_equal(fd.simulate(lam, 0.1, steps=5).w, fd.simulate(lam.astype(np.float64), 0.1, steps=5).w)


def test_fits_makes_its_message_only_for_a_result_that_does_not_fit():
    """``fits`` takes the text of what asks as a function too, called only to refuse (the
    simulations check every call's arrays: a message made for each would be most of a small
    call's checks)."""
    def never():
        raise AssertionError("the message of a result that fits was made")

    V.fits((1000, 1000), 8, asks=never)
    V.fits_in_memory("steps", 10, (10, 3), 8)
    with pytest.raises(ValueError, match=r"^curvature of shape \(2,\) asks for a result of shape \(1048576, 1048576, 1048576\)"):
        V.fits((2**20,) * 3, 8, asks=lambda: "curvature of shape (2,) asks")
    with pytest.raises(ValueError, match=r"^steps=1099511627776 asks for a result of shape"):
        V.fits_in_memory("steps", 2**40, (2**40, 2**30), 8)
