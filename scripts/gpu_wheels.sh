#!/usr/bin/env bash
# Fetch, on a machine with PyPI, the wheels scripts/gpu_generation.sh installs on the GPU machine:
# the packages our code imports that its image lacks (diffusers, librosa, soundfile) and those of
# their requirements it lacks too (read off device/KINDS.md's package list), for CPython 3.12 on
# x86_64 Linux, into .whl/ (kept out of git through .git/info/exclude). About 10 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
    diffusers==0.42.1 importlib-metadata lazy-importer librosa==0.11.0 audioread pooch platformdirs decorator soxr \
    soundfile==0.14.0 cffi pycparser 2>&1 | grep -v "is ignored" || true
du -sh .whl && ls .whl
