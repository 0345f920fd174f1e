"""Installing like a library: the default configs are package data, found from any directory."""
from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tclap.config import default_config
from tclap.errors import DataError

ROOT = Path(__file__).resolve().parent.parent
IGNORED = shutil.ignore_patterns(".git", "results", "runs", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache")


def test_default_configs_are_the_repository_files():
    for name in ("data/offline.yaml", "tclap/offline.yaml", "tclap/offline_baseline.yaml"):
        assert default_config(name).read_bytes() == (ROOT / "configs" / name).read_bytes()
    with pytest.raises(DataError, match="tclap/nope.yaml: no such default config"):
        default_config("tclap/nope.yaml")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel `pip wheel .` builds from a copy of the source tree (no network: the installed setuptools)."""
    tmp = tmp_path_factory.mktemp("wheel")
    shutil.copytree(ROOT, tmp / "src", ignore=IGNORED)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp / "dist"), str(tmp / "src")], check=True, capture_output=True)
    return next((tmp / "dist").glob("tclap-*.whl"))


def test_the_wheel_installs_the_packages_and_the_configs(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == {"tclap", "audioldm_cond", "tclap_eval", "tclap_demo"}  # eval/ and demo/ under our names
    assert "tclap_eval/order.py" in names and "tclap_demo/checkpoints/tclap/model_index.json" in names
    shipped = {n.removeprefix("tclap/configs/") for n in names if n.startswith("tclap/configs/") and n.endswith(".yaml")}
    assert shipped == {str(p.relative_to(ROOT / "configs")) for p in (ROOT / "configs").rglob("*.yaml")}
    assert "tclap/data/resources/labelled_captions.jsonl" in names
    assert not any(n.startswith(("configs/", "tests/", "results/")) for n in names)


def test_an_installed_copy_finds_its_configs_from_any_directory(wheel, tmp_path):
    """The wheel unpacked as site-packages would hold it, imported from elsewhere with no checkout on the path."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("from tclap.config import default_config; from tclap.experiment import ExperimentConfig; "
            "print(default_config('data/offline.yaml')); print(ExperimentConfig().tclap)")
    # -S: no .pth files, so the editable install of this checkout is not seen; the dependencies come by path.
    path = [str(site), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    result = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            env={"PYTHONPATH": ":".join(path)}, check=True)
    found = [Path(line) for line in result.stdout.splitlines()]
    assert found == [site / "tclap/configs/data/offline.yaml", site / "tclap/configs/tclap/offline.yaml"]
    assert all(p.is_file() for p in found)


def test_a_missing_test_piece_fails_ci_and_skips_a_local_run(monkeypatch):
    import required

    monkeypatch.setattr(required, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="chromium missing: apt-get install chromium .CI must run"):
        required.missing("chromium", "apt-get install chromium")
    monkeypatch.setattr(required, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match="chromium missing"):
        required.missing("chromium", "apt-get install chromium")
