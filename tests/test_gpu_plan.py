"""The fused updates' GPU entry points come from the table of rules: one argument list
for every rule, generated entry points, options packed into fixed slots. No compiler
and no GPU needed (tests/test_cuda_compile.py compiles what is generated here,
tests/test_cuda_host.py runs it)."""

import re

import numpy as np
import pytest

from fastdecay import _rules as R
from fastdecay._gpu import _plan, _source


def _args(kernel, values):
    table = np.zeros((2, _plan.N_FIELDS), np.int64)
    rates = np.zeros((1, 3, 8))
    ref = _plan.scalar_ref(0)
    return _plan.fused_args(kernel, table, 5, (rates, rates, rates), ref, values, ref, ref)


def _zeros(fused):
    return tuple(0.0 if kind == "f64" else 0 for _, kind in fused.options)


def test_every_fused_kernel_has_an_entry_point_in_every_storage():
    names = [f"{kernel}_{suffix}" for kernel in R.FUSED for suffix in _source.FUSED_STORAGE]
    assert _source.KERNELS["updates.cu"] == (*names, "step_increment")


def test_generated_entry_points_declare_one_argument_list_for_every_rule():
    source = _source.fused_entry_source()
    declarations = re.findall(r"__global__ void __launch_bounds__\(256\) (\w+)\((.*?)\) \{ (\w+)<(\w+), ", source)
    assert [name for name, _, _, _ in declarations] == list(_source.KERNELS["updates.cu"][:-1])
    assert {arguments for _, arguments, _, _ in declarations} == {"FD_FUSED_ARGS"}
    assert {body for _, _, body, _ in declarations} == {"fused_body"}
    assert {(name.split("_")[0], rule) for name, _, _, rule in declarations} == {
        (kernel, _source.rule_struct(kernel)) for kernel in R.FUSED}
    assert _source.rule_struct("sgd") == "SgdRule"
    assert "fused_body<SgdRule, float, bf16>" in _source.translation_unit("updates.cu")


def test_fused_args_are_one_list_for_every_rule():
    kinds = {tuple(kind for kind, _ in _args(kernel, _zeros(fused))) for kernel, fused in R.FUSED.items()}
    assert len(kinds) == 1
    (kinds,) = kinds
    assert kinds.count("f64") == 2 + R.NUMBER_SLOTS  # step value, grad_scale value, the number slots
    assert len(kinds) == 28


def test_fused_args_put_each_option_in_its_slot():
    checked = R.FUSED["sgd"].check(momentum=0.9, dampening=0.25, nesterov=False, decoupled=True, maximize=True,
                                   lr_in_buffer=False, on_drop="rescale")
    values = [value for _, value in _args("sgd", checked.values)]
    assert values[12:23] == [0.25, 0.0, 0.0, 0.0, 0, 1, 1, 0, R.ON_DROP_RESCALE, 0, 0]
    checked = R.FUSED["adam"].check(betas=(0.9, 0.99), eps=1e-6, decoupled=False, maximize=False, amsgrad=True)
    values = [value for _, value in _args("adam", checked.values)]
    assert values[12:23] == [0.99, 1e-6, 0.0, 0.0, 0, 0, 1, 0, 0, 0, 0]


@pytest.mark.parametrize("kinds, message", [
    (("f64",) * (R.NUMBER_SLOTS + 1), "f64"),
    (("bool", "i32") * R.FLAG_SLOTS, "bool/i32"),
])
def test_fused_args_refuse_a_row_with_more_options_than_slots(monkeypatch, kinds, message):
    options = tuple((f"option{k}", kind) for k, kind in enumerate(kinds))
    wide = R.Fused("wide", "wide_step", (("exp_avg", R.BUF0_ROW),), (), None, "betas[0]", options)
    monkeypatch.setitem(R.FUSED, "wide", wide)
    with pytest.raises(ValueError, match=f"wide kernels have .*{message}.*at most {R.NUMBER_SLOTS} and {R.FLAG_SLOTS}"):
        _args("wide", _zeros(wide))


def test_fused_args_refuse_a_wrong_count_of_values():
    with pytest.raises(ValueError, match=r"the lion kernels take 2 options \('beta2', 'maximize'\), got 1"):
        _args("lion", (0.99,))
