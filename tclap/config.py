"""YAML configs validated into dataclasses, shared by every entry point.

A config file holds one section per dataclass (`synth:`, `mixup:`, ...). An unknown key is an error
that lists the valid ones; command-line flags override file values.
"""
from __future__ import annotations

import dataclasses
import typing
from importlib.resources import files
from pathlib import Path
from typing import Any, TypeVar

import yaml

from tclap.errors import DataError

T = TypeVar("T")


def default_config(name: str) -> Path:
    """A config shipped with the package, e.g. `default_config("tclap/offline.yaml")`.

    The repository's `configs/` folder is installed as the package data of `tclap.configs`, so the
    defaults are found from an installed copy and from a checkout alike.

    Raises:
        DataError: no such config is shipped.
    """
    path = Path(str(files("tclap.configs") / name))
    if not path.is_file():
        raise DataError(f"{name}: no such default config (they are the files under configs/)")
    return path


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with the file named in any error."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise DataError(f"{path}: invalid YAML ({error})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: top level must be a mapping of sections")
    return data


def build(cls: type[T], values: dict[str, Any], where: str) -> T:
    """Instantiate dataclass `cls` from `values`, refusing keys it does not have.

    Args:
        cls: the dataclass.
        values: field values (missing fields keep their defaults).
        where: what to call the source in errors, e.g. "configs/data/offline.yaml: mixup".
    """
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise DataError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(valid)}")
    return cls(**values)


def section(cls: type[T], config: str | Path | None, name: str, overrides: dict[str, Any]) -> T:
    """Dataclass for section `name` of YAML file `config` (if any), with non-None `overrides` on top."""
    values: dict[str, Any] = {}
    if config is not None:
        data = load_yaml(config)
        values = dict(data.get(name) or {})
    values.update({k: v for k, v in overrides.items() if v is not None})
    return build(cls, values, f"{config}: {name}" if config else name)


def apply_overrides(data: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """Apply `section.key=value` assignments (values parsed as YAML) to a config mapping, in place.

    Args:
        data: the mapping read from a config file.
        assignments: e.g. ["train.lr=3e-4", "loss.temporal_weight=0", "data.positive_only=[a.jsonl]"].
    """
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        path = key.strip().split(".")
        if not sep or len(path) != 2 or not all(path):
            raise DataError(f"--set {assignment!r}: expected SECTION.KEY=VALUE, e.g. train.lr=3e-4")
        value = yaml.safe_load(raw) if raw.strip() else None
        if isinstance(value, str):  # YAML 1.1 reads "3e-4" as a string
            try:
                value = float(value)
            except ValueError:
                pass
        data.setdefault(path[0], {})
        if not isinstance(data[path[0]], dict):
            raise DataError(f"--set {assignment!r}: {path[0]} is not a section")
        data[path[0]][path[1]] = value
    return data


def build_run_config(cls: type[T], data: dict[str, Any], where: str) -> T:
    """A training run's config: one section dataclass per field of `cls`, unknown sections refused.

    Fields whose type is not a dataclass (e.g. T-CLAP's `freeze` list) take the file's value as is.

    Args:
        cls: the run config class.
        data: the YAML mapping, section name -> keys (overrides already applied).
        where: what to call the source in errors (the config file).
    """
    sections = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise DataError(f"{where}: unknown section(s) {', '.join(unknown)}; valid: {', '.join(sections)}")
    types = typing.get_type_hints(cls)
    values = {}
    for name in sections:
        if dataclasses.is_dataclass(types[name]):
            values[name] = build(types[name], data.get(name) or {}, f"{where}: {name}")
        elif data.get(name) is not None:
            values[name] = data[name]
    return cls(**values)


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
