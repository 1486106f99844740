"""Property tests (hypothesis): schedules match their reference closed forms on
random parameters, a batch equals the stack of its members, and the order in
which steps are evaluated never matters."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastdecay as fd
from fastdecay import reference as ref

SETTINGS = settings(max_examples=int(__import__("os").environ.get("FD_HYPOTHESIS_EXAMPLES", 25)), deadline=None, suppress_health_check=[HealthCheck.too_slow])

rates = st.floats(1e-4, 10.0)
small = st.floats(0.0, 0.5)
counts = st.integers(1, 300)
gammas = st.floats(0.5, 1.0, exclude_max=True)


def factories():
    """kind -> strategy of (factory, kwargs); integer periods and multipliers where the
    cycle structure is found in closed form (fractional ones are checked in
    test_schedules_formulas)."""
    return {
        "constant": st.fixed_dictionaries({"lr": rates}),
        "step": st.fixed_dictionaries({"lr": rates, "gamma": gammas, "period": counts}),
        "multistep": st.fixed_dictionaries(
            {"lr": rates, "gamma": gammas, "milestones": st.lists(st.integers(0, 500), max_size=5).map(sorted)}
        ),
        "exponential": st.fixed_dictionaries(
            {"lr": rates, "gamma": st.floats(0.9, 1.01), "decay_steps": st.floats(1.0, 20.0), "staircase": st.booleans()}
        ),
        "inverse_time": st.fixed_dictionaries(
            {"lr": rates, "rate": st.floats(0.0, 2.0), "decay_steps": st.floats(1.0, 20.0), "staircase": st.booleans()}
        ),
        "polynomial": st.fixed_dictionaries(
            {"lr": rates, "total_steps": counts, "power": st.floats(0.1, 4.0), "end_lr": small, "cycle": st.booleans()}
        ),
        "cosine": st.fixed_dictionaries({"lr": rates, "total_steps": counts, "min_lr": small}),
        "cosine_restarts": st.fixed_dictionaries(
            {"lr": rates, "period": st.integers(1, 60), "period_mult": st.integers(1, 3), "min_lr": small}
        ),
        "linear": st.fixed_dictionaries({"start_lr": rates, "end_lr": rates, "total_steps": counts}),
        "piecewise": st.lists(st.integers(0, 500), max_size=5, unique=True).flatmap(
            lambda b: st.fixed_dictionaries(
                {"boundaries": st.just(sorted(b)), "values": st.lists(rates, min_size=len(b) + 1, max_size=len(b) + 1)}
            )
        ),
        "one_cycle": st.fixed_dictionaries(
            {
                "max_lr": rates,
                "total_steps": st.integers(20, 2000),
                "pct_start": st.floats(0.1, 0.9),
                "div_factor": st.floats(1.5, 100.0),
                "final_div_factor": st.floats(1.5, 1e4),
            }
        ),
        "cyclic": st.fixed_dictionaries(
            {
                "base_lr": small,
                "max_lr": rates,
                "step_size_up": st.integers(1, 50),
                "step_size_down": st.integers(1, 50),
                "mode": st.sampled_from(["triangular", "triangular2", "exp_range"]),
                "gamma": st.floats(0.95, 1.0),
            }
        ),
        "inverse_sqrt": st.fixed_dictionaries({"lr": rates, "warmup_steps": st.floats(1.0, 100.0), "start_lr": small}),
        "wsd": st.integers(10, 500).flatmap(
            lambda T: st.fixed_dictionaries(
                {
                    "lr": rates,
                    "total_steps": st.just(T),
                    "warmup_steps": st.integers(0, T // 2),
                    "decay_steps": st.integers(1, T - T // 2),
                    "end_lr": small,
                    "decay": st.sampled_from(["linear", "cosine", "1-sqrt"]),
                    "start_lr": small,
                }
            )
        ),
    }


FACTORIES = factories()


def option_factories():
    """kind -> strategy of kwargs using the peers' options (one-cycle phases and anneal,
    cosine waves and exponent, restarts decay and limit, exponential floor, Keras
    boundaries), beside ``factories``' plain ones."""
    return {
        "one_cycle": st.fixed_dictionaries(
            {
                "max_lr": rates,
                "total_steps": st.integers(20, 2000),
                "pct_start": st.floats(0.1, 0.45),
                "anneal_strategy": st.sampled_from(["cos", "linear"]),
                "three_phase": st.booleans(),
                "base_momentum": st.floats(0.5, 0.9),
            }
        ),
        "cosine": st.fixed_dictionaries(
            {"lr": rates, "total_steps": counts, "min_lr": small, "num_cycles": st.floats(0.1, 3.0),
             "exponent": st.floats(0.2, 4.0)}
        ),
        "cosine_restarts": st.fixed_dictionaries(
            {"lr": rates, "period": st.integers(1, 60), "period_mult": st.integers(1, 3), "min_lr": small,
             "cycle_decay": st.floats(0.2, 1.0), "decay_amplitude": st.booleans(),
             "cycle_limit": st.one_of(st.none(), st.integers(1, 8))}
        ),
        "exponential": st.fixed_dictionaries(
            {"lr": rates, "gamma": st.floats(0.8, 1.05), "decay_steps": st.floats(1.0, 20.0), "staircase": st.booleans(),
             "end_lr": st.floats(0.0, 12.0)}
        ),
        "piecewise": st.lists(st.integers(0, 500), max_size=5, unique=True).flatmap(
            lambda b: st.fixed_dictionaries(
                {"boundaries": st.just(sorted(b)), "values": st.lists(rates, min_size=len(b) + 1, max_size=len(b) + 1),
                 "closed": st.sampled_from(["left", "right"])}
            )
        ),
        "inverse_sqrt": st.fixed_dictionaries(
            {"lr": rates, "warmup_steps": st.floats(1.0, 100.0), "timescale": st.floats(1.0, 1000.0)}
        ),
    }


OPTION_FACTORIES = option_factories()

STEPS = np.concatenate([np.arange(0, 700), [999, 1000, 1001, 4096, 10_000]])


def made(kind, kwargs):
    kwargs = dict(kwargs)
    if kind == "one_cycle" and not (1 < kwargs["pct_start"] * kwargs["total_steps"] < kwargs["total_steps"]):
        kwargs["pct_start"] = 0.5
    return getattr(fd, kind)(**kwargs)


def magnitude(s):
    """The largest rate a schedule or any of its parts reaches (a warmup's target too):
    the scale of the rounding in the closed forms, which work with all of them."""
    p = s.params
    own = float(np.max(np.abs(ref.schedule_lr(s, STEPS))))
    if s.kind == "warmup":
        return max(own, magnitude(p["schedule"]))
    if s.kind in ("join", "stack"):
        return max([own] + [magnitude(m) for m in p["schedules"]])
    if s.kind == "product":
        return max(own, float(np.prod([magnitude(m) for m in p["schedules"]])))
    return own


def exponent_slack(s, expected):
    """What a cosine's exponent p < 1, ``min_lr + (lr - min_lr) b ** p`` with b = (1 + cos) / 2,
    makes of its base's rounding near the base's zeros: b is a few ulps of 1 apart between two
    closed forms that round the cosine's argument each its own way, and b ** p moves by
    (b + d) ** p - b ** p there (0.5 / sqrt(b) times d at p = 0.5: 1e-14 at a rate of 0.002).
    Elementwise, from the expected values' bases; 0 elsewhere."""
    p = s.params
    if s.kind != "cosine" or float(p.get("exponent", 1.0)) >= 1.0:
        return 0.0
    exponent, low = float(p["exponent"]), float(p.get("min_lr", 0.0))
    span = float(p["lr"]) - low
    if span <= 0.0:
        return 0.0
    base = np.clip((expected - low) / span, 0.0, 1.0) ** (1.0 / exponent)
    d = 8 * np.finfo(np.float64).eps
    return span * ((base + d) ** exponent - base ** exponent)


def assert_matches_reference(s):
    scale = max(magnitude(s), 1e-300)
    for steps, got in ((STEPS, s(STEPS)), (np.arange(1001), s.table(1001))):
        expected = ref.schedule_lr(s, steps)
        close = np.isclose(got, expected, rtol=1e-12, atol=1e-14 * scale + exponent_slack(s, expected))
        bad = np.flatnonzero(~close)
        assert not bad.size, (f"{s}: at steps {steps[bad[:5]]} got {got[bad[:5]]!r}, the reference "
                              f"{expected[bad[:5]]!r}")


@pytest.mark.parametrize("strategies, kind", [(FACTORIES, k) for k in FACTORIES]
                         + [(OPTION_FACTORIES, k) for k in OPTION_FACTORIES],
                         ids=list(FACTORIES) + [f"{k}-options" for k in OPTION_FACTORIES])
@SETTINGS
@given(data=st.data())
def test_schedule_matches_reference_closed_form(strategies, kind, data):
    s = made(kind, data.draw(strategies[kind]))
    assert_matches_reference(s)
    if kind in ("one_cycle", "cyclic"):
        assert_matches_reference(s.momentum)


@st.composite
def any_schedule(draw, depth=2):
    """A schedule of any kind, possibly wrapped in warmup or join, multiplied, or a table
    (nested up to ``depth``)."""
    choice = draw(st.sampled_from(["leaf", "leaf", "table", "warmup", "join", "product"] if depth else ["leaf", "table"]))
    if choice == "leaf":
        kind = draw(st.sampled_from(sorted(FACTORIES)))
        return made(kind, draw(FACTORIES[kind]))
    if choice == "table":
        return fd.tabulated(draw(st.lists(rates, min_size=1, max_size=40)))
    if choice == "product":
        return fd.product(*draw(st.lists(any_schedule(depth=depth - 1), min_size=1, max_size=3)))
    if choice == "warmup":
        inner = draw(any_schedule(depth=depth - 1))
        shape = draw(st.sampled_from(["linear", "cosine", "exponential"]))
        start = draw(st.floats(1e-4, 0.5)) if shape == "exponential" else draw(small)
        if shape == "exponential" and np.any(inner.lr0() <= 0):
            shape = "linear"
        return fd.warmup(inner, draw(st.integers(0, 100)), start_lr=start, shape=shape, prefix=draw(st.booleans()))
    parts = draw(st.lists(any_schedule(depth=depth - 1), min_size=1, max_size=3))
    bounds = sorted(draw(st.lists(st.integers(0, 600), min_size=len(parts) - 1, max_size=len(parts) - 1, unique=True)))
    return fd.join(parts, bounds)


@SETTINGS
@given(s=any_schedule())
def test_composed_schedules_match_reference(s):
    assert_matches_reference(s)


@SETTINGS
@given(members=st.lists(any_schedule(depth=1), min_size=1, max_size=5), n=st.integers(0, 400))
def test_stack_equals_its_members(members, n):
    stacked = fd.stack(members)
    assert stacked.batch_shape == (len(members),)
    table = stacked.table(n)
    for k, m in enumerate(members):
        np.testing.assert_array_equal(table[k], m.table(n))
        np.testing.assert_array_equal(stacked[k].table(n), m.table(n))
    steps = np.arange(n)[:, None]
    np.testing.assert_array_equal(stacked(steps), np.stack([m(np.arange(n)) for m in members], axis=1))


@SETTINGS
@given(
    kind=st.sampled_from(["step", "exponential", "cosine", "one_cycle", "cyclic", "wsd", "polynomial"]),
    batch=st.integers(1, 6),
    data=st.data(),
)
def test_array_params_batch_equals_stack_of_scalar_schedules(kind, batch, data):
    draws = [data.draw(FACTORIES[kind]) for _ in range(batch)]
    varying = {k for k, v in draws[0].items() if isinstance(v, float) and not isinstance(v, bool)}
    if kind == "one_cycle":
        varying -= {"pct_start", "total_steps"}
    if kind == "wsd":
        varying = {"lr", "end_lr", "start_lr"}
    kwargs = dict(draws[0])
    for k in varying:
        kwargs[k] = np.array([d[k] for d in draws])
    batched = made(kind, kwargs)
    singles = [made(kind, {**draws[0], **{k: d[k] for k in varying}}) for d in draws]
    assert batched.batch_shape == ((batch,) if varying else ())
    expected = fd.stack(singles).table(300)
    np.testing.assert_array_equal(np.broadcast_to(batched.table(300), expected.shape), expected)


@SETTINGS
@given(s=any_schedule(), seed=st.integers(0, 2**32 - 1))
def test_evaluation_order_does_not_matter(s, seed):
    rng = np.random.default_rng(seed)
    steps = rng.integers(0, 3000, size=257)
    forward = s(steps)
    order = rng.permutation(len(steps))
    np.testing.assert_array_equal(s(steps[order]), forward[order])
    # one at a time, backwards, interleaved with other evaluations: the same numbers
    backwards = [s(int(t)) for t in steps[::-1]]
    np.testing.assert_array_equal(np.array(backwards)[::-1], forward)
    np.testing.assert_array_equal(s.table(steps), forward)


@SETTINGS
@given(s=any_schedule(), batch=st.booleans())
def test_every_schedule_s_table_is_one_the_constructor_accepts(s, batch):
    """``fd.Schedule`` checks a table made elsewhere (``_layout.table_problem``: kinds,
    parameters' signs, side rows' pointers); whatever the factories and their compositions
    make passes it, alone and stacked, and comes back equal."""
    if batch:
        s = fd.stack([s, fd.tabulated([0.3, 0.2]) * s, fd.constant(0.0)])
    assert fd.Schedule(s.segments, s.kind, s.params) == s
