"""Train a small MLP on scikit-learn's bundled 8x8 digits (no download), twice:

- torch: ``torch.optim.AdamW`` with a constant weight decay and
  ``torch.optim.lr_scheduler.ExponentialLR`` stepped once per epoch;
- fastdecay: ``fastdecay.torch.AdamW`` with the *same* learning rates, written
  as one closed-form schedule ``fd.exponential(lr, gamma=..., decay_steps=
  steps_per_epoch, staircase=True)`` evaluated inside the fused kernel at every
  step, and a *scheduled* weight decay ``fd.constant_shrinkage(lr, wd)`` that
  keeps the per-step shrinkage lr_t * wd_t constant while the rate decays
  (torch's constant weight decay fades with the rate).

Both runs start from the same weights and see the same mini-batches. The
script prints both test-accuracy curves and the median time of one
``optimizer.step()`` for each optimizer.

    python examples/digits.py [--epochs 30] [--threads 2]

Needs torch and scikit-learn (its dataset): ``pip install ".[examples]"``.
"""

import argparse
import statistics
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import fastdecay as fd
import fastdecay.torch as fdt


def data(seed):
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(x, digits.target, test_size=0.25, random_state=seed,
                                                        stratify=digits.target)
    as_t = torch.from_numpy
    return as_t(x_train), as_t(y_train.astype(np.int64)), as_t(x_test), as_t(y_test.astype(np.int64))


def model(hidden, seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(64, hidden), torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
        torch.nn.Linear(hidden, 10),
    )


def accuracy(net, x, y):
    with torch.no_grad():
        return (net(x).argmax(dim=1) == y).float().mean().item()


def weight_norm(net):
    with torch.no_grad():
        return torch.sqrt(sum((p * p).sum() for p in net.parameters())).item()


def train(net, optimizer, x, y, x_test, y_test, *, epochs, batch_size, seed, on_epoch_end=None):
    """Mini-batch training; returns (test accuracy after each epoch, weight norm after each
    epoch, seconds per optimizer.step())."""
    order = torch.Generator().manual_seed(seed)
    loss_fn = torch.nn.CrossEntropyLoss()
    curve, norms, step_times = [], [], []
    for _ in range(epochs):
        perm = torch.randperm(x.shape[0], generator=order)
        for i in range(0, x.shape[0], batch_size):
            idx = perm[i:i + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(net(x[idx]), y[idx]).backward()
            t0 = time.perf_counter()
            optimizer.step()
            step_times.append(time.perf_counter() - t0)
        if on_epoch_end is not None:
            on_epoch_end()
        curve.append(accuracy(net, x_test, y_test))
        norms.append(weight_norm(net))
    return curve, norms, step_times


def main(argv=None, out=print):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--gamma", type=float, default=0.9, help="lr factor per epoch")
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    x, y, x_test, y_test = data(args.seed)
    steps_per_epoch = -(-x.shape[0] // args.batch_size)

    # torch: AdamW + ExponentialLR stepped per epoch, constant weight decay
    net_torch = model(args.hidden, args.seed)
    opt_torch = torch.optim.AdamW(net_torch.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched_torch = torch.optim.lr_scheduler.ExponentialLR(opt_torch, gamma=args.gamma)
    acc_torch, norm_torch, t_torch = train(net_torch, opt_torch, x, y, x_test, y_test, epochs=args.epochs,
                               batch_size=args.batch_size, seed=args.seed, on_epoch_end=sched_torch.step)

    # fastdecay: the same rates as a staircase exponential, weight decay scheduled with it
    lr = fd.exponential(args.lr, gamma=args.gamma, decay_steps=steps_per_epoch, staircase=True)
    wd = fd.constant_shrinkage(lr, args.weight_decay)
    net_fd = model(args.hidden, args.seed)
    opt_fd = fdt.AdamW(net_fd.parameters(), lr=lr, weight_decay=wd)
    acc_fd, norm_fd, t_fd = train(net_fd, opt_fd, x, y, x_test, y_test, epochs=args.epochs, batch_size=args.batch_size,
                         seed=args.seed)

    n_params = sum(p.numel() for p in net_fd.parameters())
    out(f"digits: {x.shape[0]} train / {x_test.shape[0]} test images, MLP 64-{args.hidden}-{args.hidden}-10 "
        f"({n_params} parameters), batch {args.batch_size}, {steps_per_epoch} steps per epoch")
    out(f"torch:     AdamW(lr={args.lr:g}, weight_decay={args.weight_decay:g}) + ExponentialLR(gamma={args.gamma:g}) "
        "per epoch")
    out(f"fastdecay: AdamW(lr={lr!r}, weight_decay=constant_shrinkage(lr, {args.weight_decay:g}))")
    out("")
    out("test accuracy and weight norm |w| after each epoch (lr and fastdecay's wd during it):")
    out(f"{'epoch':>5}  {'lr':>9}  {'wd fastdecay':>12}  {'acc torch':>9}  {'acc fastdecay':>13}  "
        f"{'|w| torch':>9}  {'|w| fastdecay':>13}")
    for e in range(args.epochs):
        t = e * steps_per_epoch
        out(f"{e + 1:>5}  {lr(t):>9.3e}  {wd(t):>12.3e}  {acc_torch[e]:>9.4f}  {acc_fd[e]:>13.4f}  "
            f"{norm_torch[e]:>9.3f}  {norm_fd[e]:>13.3f}")
    med_torch, med_fd = statistics.median(t_torch), statistics.median(t_fd)
    out("")
    out(f"optimizer.step() median over {len(t_torch)} steps: torch AdamW {med_torch * 1e6:.1f} us, "
        f"fastdecay AdamW {med_fd * 1e6:.1f} us (ratio {med_torch / med_fd:.2f}x; "
        f"torch {torch.__version__}, {args.threads} threads)")
    return {"acc_torch": acc_torch, "acc_fastdecay": acc_fd, "norm_torch": norm_torch, "norm_fastdecay": norm_fd,
            "step_s_torch": med_torch, "step_s_fastdecay": med_fd}


if __name__ == "__main__":
    main()
