"""The examples run: a shortened digits training (fastdecay.torch.AdamW next to torch AdamW)."""

import importlib.util
import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", os.path.join(ROOT, "examples", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_digits_trains_with_both_optimizers():
    digits = load_example("digits")
    lines = []
    result = digits.main(["--epochs", "4", "--hidden", "32"], out=lines.append)
    text = "\n".join(lines)
    assert len(result["acc_torch"]) == len(result["acc_fastdecay"]) == 4
    # 10 classes: chance is 0.1; four epochs of AdamW reach far beyond it with either optimizer
    assert min(result["acc_torch"][-1], result["acc_fastdecay"][-1]) > 0.8, text
    assert result["step_s_torch"] > 0 and result["step_s_fastdecay"] > 0
    # the scheduled weight decay (growing as the rate falls) shrinks the weights more than torch's constant one
    assert result["norm_fastdecay"][-1] < result["norm_torch"][-1]
    assert "acc fastdecay" in text and "optimizer.step() median" in text


def test_digits_same_weight_decay_means_same_training():
    """With the scheduled weight decay switched off (constant on both sides) the two runs see
    the same rates, batches and updates: fastdecay's AdamW is torch's, to float32 rounding."""
    digits = load_example("digits")
    import fastdecay as fd
    import fastdecay.torch as fdt

    x, y, x_test, y_test = digits.data(0)
    steps_per_epoch = -(-x.shape[0] // 64)
    nets = [digits.model(32, 0), digits.model(32, 0)]
    opt_t = torch.optim.AdamW(nets[0].parameters(), lr=3e-3, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt_t, gamma=0.9)
    lr = fd.exponential(3e-3, gamma=0.9, decay_steps=steps_per_epoch, staircase=True)
    opt_f = fdt.AdamW(nets[1].parameters(), lr=lr, weight_decay=0.05)
    digits.train(nets[0], opt_t, x, y, x_test, y_test, epochs=2, batch_size=64, seed=0, on_epoch_end=sched.step)
    digits.train(nets[1], opt_f, x, y, x_test, y_test, epochs=2, batch_size=64, seed=0)
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
