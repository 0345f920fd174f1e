"""What a result depends on beyond its config: package versions, threads and machine, recorded next to
the figures (`metrics.json`) so a rerun elsewhere can be compared with the same facts in hand.

Float reductions in torch's CPU kernels are ordered by thread count and instruction set, so a training
run repeats bit for bit only with the same versions, threads and CPU; the record names all three.
torch's `cpu_capability` names only ATen's own dispatch level (AVX512 on both an AMD EPYC and an Intel
Sapphire Rapids); oneDNN, which runs bf16 matmuls and convolutions under autocast, picks its kernels
from the CPU's flags (AMX tiles where present, else AVX512-BF16), so the record also keeps the CPU's
model name and those flags.
"""
from __future__ import annotations

import hashlib
import os
import platform
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

import torch

# the CPU flags that choose oneDNN's bf16 / int8 kernels (Linux /proc/cpuinfo names)
ONEDNN_FLAGS = ("amx_bf16", "amx_tile", "amx_int8", "avx512_bf16", "avx512_fp16", "avx512_vnni", "avx_vnni")
PACKAGES = ("tclap", "torch", "transformers", "tokenizers", "diffusers", "accelerate", "numpy", "scipy", "librosa")


def cpu_description(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict:
    """The first CPU's model name and which of `ONEDNN_FLAGS` it has, from Linux's cpuinfo.

    Returns {"cpu_model": str | None, "cpu_flags": sorted list}; both empty (None, []) where the file
    is missing or unreadable (macOS, Windows), so the record never fails a run.
    """
    try:
        text = cpuinfo.read_text()
    except OSError:
        return {"cpu_model": None, "cpu_flags": []}
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())  # the first processor's line of each field
    flags = set(fields.get("flags", "").split())
    return {"cpu_model": fields.get("model name"), "cpu_flags": sorted(flags & set(ONEDNN_FLAGS))}


def environment() -> dict:
    """Package versions (None when not installed), torch's intra-op thread count, `OMP_NUM_THREADS`,
    Python, the machine, torch's CPU instruction-set level and the CPU (`cpu_description`)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"packages": versions, "torch_threads": torch.get_num_threads(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "python": platform.python_version(),
            "machine": platform.machine(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            **cpu_description()}


def files_digest(root: Path, paths: Iterable[Path]) -> str | None:
    """SHA-256 over data files: each file's path relative to `root` (POSIX form), its size and its
    bytes, in the order of those relative paths as strings.

    Two machines that built the same clips, sample for sample, get the same digest, wherever the
    folder lies; so a rerun that differs in its figures tells whether the data or the training
    differed. Reads every file once (about a second for the offline experiment's 540 MB). None when a
    file cannot be read (the record never fails a run).
    """
    digest = hashlib.sha256()
    try:
        for name, path in sorted((p.relative_to(root).as_posix(), p) for p in paths):
            digest.update(f"{name}\0{path.stat().st_size}\0".encode())
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()
