"""What a result depends on beyond its config: package versions, threads and machine, recorded next to
the figures (`metrics.json`) so a rerun elsewhere can be compared with the same facts in hand.

Float reductions in torch's CPU kernels are ordered by thread count and instruction set, so a training
run repeats bit for bit only with the same versions, threads and CPU; the record names all three.
"""
from __future__ import annotations

import os
import platform
from importlib import metadata

import torch

PACKAGES = ("tclap", "torch", "transformers", "tokenizers", "diffusers", "accelerate", "numpy", "scipy", "librosa")


def environment() -> dict:
    """Package versions (None when not installed), torch's intra-op thread count, `OMP_NUM_THREADS`,
    Python, the machine and torch's CPU instruction-set level."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"packages": versions, "torch_threads": torch.get_num_threads(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "python": platform.python_version(),
            "machine": platform.machine(), "cpu_capability": torch.backends.cpu.get_cpu_capability()}
