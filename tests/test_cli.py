"""The `tclap` command end to end, on tiny settings."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tclap.cli import main
from tclap.data.mixup import MANIFEST, read_manifest

REPO = Path(__file__).resolve().parent.parent


def run(capsys, *argv):
    main([str(a) for a in argv])
    return capsys.readouterr().out


def test_help_lists_every_subcommand():
    out = subprocess.run([sys.executable, "-m", "tclap.cli", "--help"], capture_output=True, text=True).stdout
    for command in ("synth-world", "mixup", "negatives", "negatives-eval", "shards", "order-free-pairs",
                    "convert-laion", "evaluate", "generate", "experiment"):
        assert command in out


@pytest.mark.parametrize("command", ["order", "kl", "detector"])
def test_handed_off_commands_name_themselves_in_their_usage(command, capsys):
    argv0 = sys.argv[0]
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert capsys.readouterr().out.startswith(f"usage: tclap {command} ")
    assert sys.argv[0] == argv0  # restored


def test_data_errors_exit_2_with_a_message_and_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tclap.cli", "mixup", "--library", str(tmp_path),
                             "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert result.returncode == 2
    assert "meta CSV not found" in result.stderr and "Traceback" not in result.stderr


def test_unknown_config_key_lists_the_valid_ones(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("mixup:\n  clips: 10\n  clip_lenght: 3\n")
    with pytest.raises(SystemExit) as exit_:
        main(["mixup", "--library", str(tmp_path), "--out", str(tmp_path / "o"), "--config", str(config)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "unknown key(s) clip_lenght" in err and "clip_seconds" in err


def test_synth_world_then_mixup_with_flags_over_config(tmp_path, capsys):
    run(capsys, "synth-world", "--out", tmp_path / "w", "--files-per-class", 5, "--classes", "beep", "siren", "knock")
    config = tmp_path / "c.yaml"
    config.write_text("mixup:\n  clips: 50\n  clip_seconds: 4.0\n")
    out = run(capsys, "mixup", "--library", tmp_path / "w", "--out", tmp_path / "m", "--config", config,
              "--clips", 12, "--workers", 1)
    assert "built 12 clips" in out and "clips/s" in out
    records = read_manifest(tmp_path / "m" / MANIFEST)
    assert len(records) == 12 and {e["category"] for r in records for e in r["events"]} <= {"beep", "siren", "knock"}


def test_negatives_on_a_clotho_csv(tmp_path, capsys):
    captions = tmp_path / "clotho.csv"
    captions.write_text("file_name,caption_1,caption_2,caption_3,caption_4,caption_5\n"
                        "a.wav,a dog barks and then a man speaks,rain falls,"
                        "a bell rings followed by a door slams,wind blows while birds sing,a car passes\n")
    out = run(capsys, "negatives", "--captions", captions, "--out", tmp_path / "neg.jsonl")
    records = [json.loads(line) for line in (tmp_path / "neg.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == [f"a.wav#{k}" for k in range(1, 6)]
    assert records[0]["negative"] == "a man speaks and then a dog barks" and records[0]["audio"] == "a.wav"
    assert records[1]["negative"] is None and records[3]["negative"] is None
    assert "not swappable" in out


def test_negatives_eval_reports_precision_and_coverage(tmp_path, capsys):
    out = run(capsys, "negatives-eval", "--out", tmp_path / "r.json")
    report = json.loads((tmp_path / "r.json").read_text())
    # the figures docs/results.md quotes: every produced negative right, 46 of the 48 swappable captions
    assert (report["items"], report["produced"], report["correct"], report["swappable"]) == (89, 46, 46, 48)
    assert report["precision"] == 1.0 and report["false_swaps"] == 0
    assert "precision 100.0% (46/46), coverage 95.8% (46/48)" in out


def test_shards_from_a_mixup_split(mixup_dir, tmp_path, capsys):
    out = run(capsys, "shards", "--mixup", mixup_dir, "--split", "test", "--out", tmp_path, "--shard-size", 4)
    assert "wrote 10 samples in 3 shard(s)" in out


@pytest.mark.slow
def test_offline_experiment_runs_end_to_end_on_small_settings(tmp_path, capsys):
    config = tmp_path / "small.yaml"
    config.write_text("synth:\n  files_per_class: 5\nmixup:\n  clips: 60\n  clip_seconds: 4.0\n")
    args = ("experiment", "offline", "--out", tmp_path / "run", "--config", config, "--workers", 1,
            "--seeds", 0, 1, "--baseline-steps", 2, "--tclap-steps", 2)
    out = run(capsys, *args)
    assert "| tclap |" in out
    assert "== tclap experiment: T-CLAP and the λ = 0 control" in out  # each stage says what runs
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["mixup"]["clips_per_split"] == {"train": 48, "val": 6, "test": 6}
    assert 0 < summary["rule_negatives"]["precision"] <= 1
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for model in ("baseline", "control", "tclap"):
        assert metrics[model]["seeds"] == 2
        for name in ("tclassify_t2a", "tclassify_a2t", "tclassify_t2a_unseen_phrasing", "retrieval_t2a_r1",
                     "retrieval_a2t_r1", "zeroshot_acc"):
            assert 0 <= metrics[model][name] <= 100 and metrics[model][f"{name}_std"] >= 0
    assert metrics["seeds"] == [0, 1] and metrics["training"] == {"parallel_runs": 2, "threads_per_run": 1}
    from importlib.metadata import version  # the record's versions are the installed ones
    assert metrics["environment"]["packages"]["torch"] == version("torch")
    assert metrics["environment"]["torch_threads"] == __import__("torch").get_num_threads()
    digests = metrics["data_digest"]
    assert set(digests) == {"library", "mixup"} and all(len(d) == 64 for d in digests.values())
    assert (tmp_path / "run" / "seed1" / "control" / "final" / "config.json").exists()
    control = json.loads((tmp_path / "run" / "seed1" / "control" / "run_config.json").read_text())
    assert control["config"]["loss"]["temporal_weight"] == 0
    assert control["environment"]["torch_threads"] == 1 and control["environment"]["omp_num_threads"] == "1"
    assert control["config"]["model"]["init"] == str(tmp_path / "run" / "seed1" / "baseline" / "final")
    # each run reads the job's order-free files that its config lists: the fine-tunes draw the single events 4x
    baseline = json.loads((tmp_path / "run" / "seed1" / "baseline" / "run_config.json").read_text())
    pairs, singles = (str(tmp_path / "run" / name) for name in ("orderfree_train.jsonl", "singles_train.jsonl"))
    assert baseline["config"]["data"]["positive_only"] == [pairs]
    assert control["config"]["data"]["positive_only"] == [pairs, singles]
    assert control["config"]["data"]["positive_only_repeats"] == [1, 3]
    assert Path(singles).read_text()
    # A rerun finds every model trained and only evaluates again.
    run(capsys, *args)
    rerun = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert all(rerun[m]["train_seconds"] == 0 for m in ("baseline", "control", "tclap"))
    assert rerun["tclap"]["tclassify_t2a"] == metrics["tclap"]["tclassify_t2a"]


@pytest.mark.slow
def test_offline_experiment_on_a_users_uneven_library(world, tmp_path, capsys):
    """--library: uneven class sizes, a 44.1 kHz stereo file and a 0.1-s file, one seed, tiny steps."""
    import csv
    import shutil

    import numpy as np
    import soundfile as sf

    library = tmp_path / "mine"
    shutil.copytree(world, library)
    meta = library / "meta" / "esc50.csv"
    rows = list(csv.DictReader(meta.open()))
    kept = [r for r in rows if not (r["category"] == "beep" and r["fold"] in ("1", "2"))]  # beep: 3 files
    stereo, short = kept[0]["filename"], kept[1]["filename"]
    audio, rate = sf.read(library / "audio" / stereo)
    sf.write(library / "audio" / stereo, np.stack([audio, audio], axis=1), 44100)  # now stereo, other rate
    sf.write(library / "audio" / short, np.full(int(0.1 * rate), 0.3) * np.sin(np.arange(int(0.1 * rate))), rate)
    with meta.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(kept)
    config = tmp_path / "small.yaml"
    config.write_text("mixup:\n  clips: 30\n  clip_seconds: 4.0\n")
    out = run(capsys, "experiment", "offline", "--out", tmp_path / "run", "--config", config, "--workers", 1,
              "--library", library, "--seeds", 3, "--baseline-steps", 2, "--tclap-steps", 2,
              "--tclap-config", REPO / "configs" / "tclap" / "offline_long.yaml")
    assert "| tclap |" in out and not (tmp_path / "run" / "world").exists()
    for model, weight in (("tclap", 1.0), ("control", 0.0)):  # offline_long's lambda, and the control's 0
        ran = json.loads((tmp_path / "run" / "seed3" / model / "run_config.json").read_text())["config"]
        assert ran["loss"]["temporal_weight"] == weight and ran["data"]["batch_mix"] == {"positive_only": 1, "temporal": 1}
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert sum(summary["mixup"]["clips_per_split"].values()) == 30
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["tclap"]["seeds"] == 1 and 0 <= metrics["tclap"]["zeroshot_acc"] <= 100
    assert (tmp_path / "run" / "seed3" / "tclap" / "final" / "config.json").exists()
