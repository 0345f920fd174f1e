"""Data flows tclap -> audioldm_cond -> eval -> demo: a library module imports only its own layer and the
ones below. The `tclap` command (`tclap/cli.py`) is the one front that reaches every layer (lazily).
The eval/ and demo/ folders are the packages tclap_eval and tclap_demo (pyproject's package-dir)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {"tclap": "tclap", "audioldm_cond": "audioldm_cond", "tclap_eval": "eval", "tclap_demo": "demo"}  # package: folder, lowest first
FRONTS = {Path("tclap/cli.py")}


def imported_packages(path: Path) -> set[str]:
    """Top-level names of every module `path` imports, at any depth (lazy imports in functions too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def upward_imports() -> list[str]:
    found = []
    packages = list(LAYERS)
    for rank, package in enumerate(packages):
        for path in sorted((ROOT / LAYERS[package]).rglob("*.py")):
            if path.relative_to(ROOT) in FRONTS:
                continue
            higher = imported_packages(path) & set(packages[rank + 1:])
            found += [f"{path.relative_to(ROOT)} imports {name}" for name in sorted(higher)]
    return found


def test_no_library_module_imports_a_higher_layer():
    assert upward_imports() == []


def test_the_check_sees_lazy_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import json\n\ndef f():\n    from tclap_demo.studio import Studio\n    import tclap_eval.kl as kl\n")
    assert imported_packages(module) == {"json", "tclap_demo", "tclap_eval"}
