"""Pieces the README's test command installs (the `test` extra, Debian chromium): a missing one skips a
local run and fails CI, where `.ci/run` sets TCLAP_CI=1, so a green CI never hides an untested part."""
from __future__ import annotations

import importlib
import os
import shutil
from types import ModuleType

import pytest

IN_CI = os.environ.get("TCLAP_CI") == "1"


def missing(what: str, install: str) -> None:
    """Skip (locally) or fail (CI) because `what` is not installed; `install` says how to get it."""
    message = f"{what} missing: {install}"
    if IN_CI:
        pytest.fail(f"{message} (CI must run every test)")
    pytest.skip(message)


def module(name: str) -> ModuleType:
    """Import a package of the `test` extra."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(name, "pip install -e '.[test]'")


def chromium() -> str:
    """The Debian chromium executable the browser test drives."""
    path = shutil.which("chromium")
    if path is None:
        missing("chromium", "apt-get install chromium")
    return path
