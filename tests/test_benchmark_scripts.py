"""The benchmark scripts run (on tiny settings) and write what their docs say; their timings are not tested."""
import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"


def test_unet_layouts_writes_every_layout_with_per_round_ratios(tmp_path):
    out = tmp_path / "unet_layouts.json"
    done = subprocess.run([sys.executable, str(BENCHMARKS / "unet_layouts.py"), "--batch", "1", "--steps", "1",
                           "--rounds", "2", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["rounds"] == 2 and len(result["layouts"]) == 5
    tiny = result["layouts"]["tiny, 4x latents"]
    assert tiny["speed_vs_tiny"] == 1.0 and tiny["speed_vs_tiny_range"] == [1.0, 1.0]
    for row in result["layouts"].values():
        assert len(row["seconds_per_step_by_round"]) == 2
        low, high = row["speed_vs_tiny_range"]
        assert low <= row["speed_vs_tiny"] <= high
    assert result["layouts"]["offline layout, 8x latents"]["latents"] == [8, 50, 8]
    refused = subprocess.run([sys.executable, str(BENCHMARKS / "unet_layouts.py"), "--rounds", "0"],
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "--rounds" in refused.stderr
