"""The one step timer the training benchmarks share: AdamW steps, the first one untimed (allocation warm-up)."""
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
