"""Forward+backward time and peak memory of max-plus layers against nn.Linear.

Usage: ``python benchmarks/maxplus_layer.py [--batch 256] [--features 512]``

Measured side by side in one process, on the same input:

* ``nn.Linear``: the reference (a BLAS matrix product);
* ``MaxPlus numba``: the fused compiled kernel of ``helpers.morph``;
* ``MaxPlus torch``: the pure-PyTorch fallback (chunked, custom autograd);
* ``naive broadcast``: ``(x[:, None, :] + W).max(-1)`` with plain autograd;
* ``sparse MaxPlus numba``: the compiled kernel on a sparse layer (k = 2 * out).

Time: wall-clock of one forward+backward (sum of outputs as the loss) over
interleaved rounds after warm-up; the rounds alternate the variants so that load
from other processes hits all of them alike. Printed: the median and the fastest
round (timeit's convention: the least disturbed by other programs), each also as a
ratio to nn.Linear, and the median over rounds of (variant / Linear in the same
round).

Peak memory: ``torch.profiler`` with ``profile_memory=True`` records every CPU
allocation and free made through torch; the peak is the running maximum of
allocated bytes during one forward+backward (tensors that already existed are not
counted). The numba kernel writes into torch-allocated buffers, so it is seen too.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

import helpers  # noqa: F401  (patches torchvision before anything imports it)
from helpers.morph import MaxPlus, maxplus_naive, numba_available


def peak_allocated_mib(step: Callable[[], None]) -> float:
    """Peak bytes (MiB) torch allocates on the CPU during one call of ``step``."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = [
        e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"
    ]
    events.sort(key=lambda e: e.start_ns())
    current = peak = 0
    for event in events:
        current += event.nbytes()
        peak = max(peak, current)
    return peak / 2**20


def make_steps(batch: int, features: int) -> dict[str, Callable[[], None]]:
    """One forward+backward closure per variant, all on the same input x."""
    torch.manual_seed(0)
    x = torch.randn(batch, features, requires_grad=True)
    linear = nn.Linear(features, features)
    fused = MaxPlus(features, features, backend="numba")
    chunked = MaxPlus(features, features, backend="torch")
    chunked.load_state_dict(fused.state_dict())
    sparse = MaxPlus(features, features, init="sparse", backend="numba")

    def step(
        module: Callable[[torch.Tensor], torch.Tensor], params: list[torch.Tensor]
    ) -> Callable[[], None]:
        def run() -> None:
            module(x).sum().backward()
            x.grad = None  # freed here, so every step starts from the same state
            for p in params:
                p.grad = None

        return run

    def naive(inp: torch.Tensor) -> torch.Tensor:
        return maxplus_naive(inp, chunked.weight, chunked.bias)

    steps = {"nn.Linear": step(linear, list(linear.parameters()))}
    if numba_available():
        steps["MaxPlus numba (fused kernel)"] = step(fused, list(fused.parameters()))
    steps["MaxPlus torch (chunked fallback)"] = step(
        chunked, list(chunked.parameters())
    )
    steps["naive broadcast (autograd)"] = step(naive, list(chunked.parameters()))
    if numba_available():
        steps["sparse MaxPlus numba (k=2*out)"] = step(
            sparse, list(sparse.parameters())
        )
    return steps


def main() -> None:
    """Time every variant side by side and print the ratios to nn.Linear."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument(
        "--features", type=int, default=512, help="in_features = out_features"
    )
    parser.add_argument(
        "--rounds", type=int, default=30, help="timed rounds of the fast variants"
    )
    parser.add_argument(
        "--slow-rounds", type=int, default=5, help="timed rounds of the naive broadcast"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch and numba threads (0: keep the defaults)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        if numba_available():
            import numba

            numba.set_num_threads(args.threads)
    b, n = args.batch, args.features
    steps = make_steps(b, n)
    print(
        f"MaxPlus({n} -> {n}) vs nn.Linear({n}, {n}), batch {b}, forward+backward, "
        f"{torch.get_num_threads()} torch threads"
    )
    start = time.perf_counter()
    for run in steps.values():  # warm-up: numba compiles or loads its cache here
        run()
        run()
    print(
        f"warm-up (includes numba compilation on a first run): "
        f"{time.perf_counter() - start:.1f} s"
    )
    slow = {name for name in steps if name.startswith("naive")}
    times: dict[str, list[float]] = {name: [] for name in steps}
    ratios: dict[str, list[float]] = {name: [] for name in steps}
    for r in range(args.rounds):
        this_round: dict[str, float] = {}
        for name, run in steps.items():
            if name in slow and r >= args.slow_rounds:
                continue
            t0 = time.perf_counter()
            run()
            this_round[name] = time.perf_counter() - t0
            times[name].append(this_round[name])
        for name, t in this_round.items():
            ratios[name].append(t / this_round["nn.Linear"])
    sums_mib = b * n * n * 4 / 2**20
    print(f"\none batch x out x in float32 tensor would take {sums_mib:.0f} MiB\n")
    header = (
        f"{'variant':34s} {'median ms':>10s} {'x Linear':>9s} "
        f"{'fastest ms':>11s} {'x Linear':>9s} {'per-round x':>12s} "
        f"{'peak MiB':>9s}"
    )
    print(header)
    print("-" * len(header))
    base = statistics.median(times["nn.Linear"])
    base_min = min(times["nn.Linear"])
    for name, run in steps.items():
        med, fastest = statistics.median(times[name]), min(times[name])
        per_round = statistics.median(ratios[name])
        peak = peak_allocated_mib(run)
        print(
            f"{name:34s} {med * 1e3:10.2f} {med / base:9.2f} {fastest * 1e3:11.2f} "
            f"{fastest / base_min:9.2f} {per_round:12.2f} {peak:9.1f}"
        )
    print(
        f"\n{args.rounds} rounds ({args.slow_rounds} for the naive broadcast); "
        f"peak = torch CPU allocations during one step."
    )


if __name__ == "__main__":
    main()
