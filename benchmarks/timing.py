"""The timers the benchmarks share: AdamW steps for training, best-of-N calls for everything else; the
first step or call is untimed (allocation warm-up)."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import torch


def seconds_per_step(parameters: Iterable[torch.nn.Parameter], loss: Callable[[], torch.Tensor], steps: int) -> float:
    """Mean wall seconds of `steps` optimizer steps of `loss()`, after one warm-up step.

    Args:
        parameters: what the optimizer updates.
        loss: computes one step's scalar loss (forward included).
        steps: timed steps.
    """
    optimizer = torch.optim.AdamW(parameters, lr=1e-4)
    for i in range(steps + 1):
        if i == 1:
            start = time.perf_counter()
        loss().backward()
        optimizer.step()
        optimizer.zero_grad()
    return (time.perf_counter() - start) / steps


def best_seconds(run: Callable[[], object], repeats: int, synchronize: Callable[[], None] = lambda: None) -> float:
    """Fastest of `repeats` timed calls of `run`, after one untimed warm-up call.

    Args:
        run: the work to time.
        repeats: timed calls.
        synchronize: waits for queued device work (torch.cuda.synchronize), so GPU time is counted.
    """
    run()
    synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        synchronize()
        times.append(time.perf_counter() - start)
    return min(times)
