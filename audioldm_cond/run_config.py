"""Run configs of the AudioLDM trainers: one YAML section per dataclass, as `tclap.train.RunConfig`.

`train_vae.py` and `train_audioldm.py` read a file with sections such as `model`, `data`, `train`,
apply command-line overrides, and build the run config, refusing unknown sections and keys with the
valid ones listed.
"""
from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, TypeVar

from tclap.config import apply_overrides, build, load_yaml
from tclap.errors import DataError

T = TypeVar("T")


def build_run_config(cls: type[T], data: dict[str, Any], where: str) -> T:
    """Instantiate a dataclass whose fields are all section dataclasses.

    Args:
        cls: the run config class (each field's type is a dataclass with defaults).
        data: the YAML mapping, section name -> keys (overrides already applied).
        where: what to call the source in errors (the config file).
    """
    sections = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise DataError(f"{where}: unknown section(s) {', '.join(unknown)}; valid: {', '.join(sections)}")
    types = typing.get_type_hints(cls)
    return cls(**{name: build(types[name], data.get(name) or {}, f"{where}: {name}") for name in sections})


def read_run_config(cls: type[T], path: str | Path, overrides: list[str], output_dir: str | None = None) -> T:
    """A run config from a YAML file with `--set SECTION.KEY=VALUE` overrides and `--output-dir` on top.

    Args:
        cls: the run config class.
        path: the YAML file.
        overrides: `section.key=value` assignments, applied in order.
        output_dir: shorthand for `train.output_dir=...`, applied last.
    """
    data = apply_overrides(load_yaml(path), overrides)
    if output_dir:
        apply_overrides(data, [f"train.output_dir={output_dir}"])
    return build_run_config(cls, data, str(path))
