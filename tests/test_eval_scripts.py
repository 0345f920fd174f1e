"""`python eval/kl.py`, `eval/frechet.py`, `eval/order.py` (and `tclap kl|fad|order`) on mixed-up clips."""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tclap_demo.studio import SHIPPED
from tclap_eval.detector import EventDetector
from tclap_eval.kl import paired_kl
from tclap.audio import load_audio
from tclap.cli import main as tclap
from tclap.data.mixup import MANIFEST, read_manifest

ROOT = Path(__file__).resolve().parent.parent
DETECTOR = SHIPPED / "detector.pt"


@pytest.fixture(scope="module")
def folders(mixup_dir, tmp_path_factory):
    """reference/: three test clips; generated/: their order-swapped twins under the same names, plus a note."""
    root = tmp_path_factory.mktemp("scripts")
    records = [r for r in read_manifest(mixup_dir / MANIFEST) if r["split"] == "test"][:3]
    (root / "reference").mkdir()
    (root / "generated").mkdir()
    prompts = []
    for r in records:
        shutil.copy(mixup_dir / r["audio"], root / "reference" / f"{r['id']}.wav")
        shutil.copy(mixup_dir / r["neg_audio"], root / "generated" / f"{r['id']}.wav")
        prompts.append({"id": r["id"], "events": [e["category"] for e in r["events"]]})  # the reference's order
    (root / "generated" / "notes.txt").write_text("not audio")
    (root / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in prompts))
    return root


def run_json(capsys, argv):
    tclap(argv)
    return json.loads(capsys.readouterr().out)


def test_kl_script_matches_the_library_on_the_detectors_logits(folders, capsys):
    with pytest.warns(UserWarning, match="skipped 1 non-audio"):
        result = run_json(capsys, ["kl", str(folders / "reference"), str(folders / "generated"),
                                   "--classifier", f"detector:{DETECTOR}"])
    detector = EventDetector.load(DETECTOR)
    logits = {side: {p.stem: detector.class_logits(load_audio(p, 16000)) for p in (folders / side).glob("*.wav")}
              for side in ("reference", "generated")}
    assert result["pairs"] == 3
    assert result["kl"] == pytest.approx(paired_kl(logits["reference"], logits["generated"]).softmax, rel=1e-6)


def test_kl_script_names_what_does_not_pair(folders, tmp_path, capsys):
    shutil.copytree(folders / "generated", tmp_path / "generated")
    victim = sorted((tmp_path / "generated").glob("*.wav"))[0]
    victim.unlink()
    with pytest.raises(SystemExit) as exit_:
        tclap(["kl", str(folders / "reference"), str(tmp_path / "generated"), "--classifier", f"detector:{DETECTOR}"])
    assert exit_.value.code == 2
    assert f"2 of 3 clips paired, 99% needed); references with no generated clip: {victim.stem}" in \
        capsys.readouterr().err


def test_fad_script_is_zero_for_a_folder_against_itself(folders, capsys):
    same = run_json(capsys, ["fad", str(folders / "reference"), str(folders / "reference"),
                             "--embedder", f"detector:{DETECTOR}"])
    other = run_json(capsys, ["fad", str(folders / "reference"), str(folders / "generated"),
                              "--embedder", f"detector:{DETECTOR}"])
    assert same["fad"] == pytest.approx(0, abs=1e-4) and other["fad"] > 1e-2
    assert same["reference_frames"] == same["generated_frames"] > 0


def test_bad_scorer_specs_and_empty_folders_are_named(folders, tmp_path, capsys):
    with pytest.raises(SystemExit):
        tclap(["fad", str(folders / "reference"), str(folders / "reference"), "--embedder", "openl3:/x"])
    assert "expected KIND:PATH with KIND one of vggish, panns, panns-sed, clap, detector" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        tclap(["fad", str(tmp_path / "empty"), str(folders / "reference"), "--embedder", f"detector:{DETECTOR}"])
    assert "empty: no audio files" in capsys.readouterr().err


def test_order_script_as_a_plain_python_script(folders, tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "eval" / "order.py"), str(folders / "reference"),
                             "--prompts", str(folders / "prompts.jsonl"), "--detector", str(DETECTOR),
                             "--csv", str(tmp_path / "clips.csv")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    rows = list(csv.DictReader(open(tmp_path / "clips.csv")))
    assert scores["clips"] == len(rows) == 3
    assert scores["order_accuracy"] == pytest.approx(np.mean([r["in_order"] == "True" for r in rows]))
    assert scores["order_accuracy"] >= 2 / 3  # real clips in the order asked: the detector mostly agrees
    assert all(len(r["onsets_s"].split()) == 2 for r in rows)


def test_order_script_refuses_prompts_without_events(folders, tmp_path, capsys):
    (tmp_path / "p.jsonl").write_text('{"id": "x", "caption": "bell and then beep"}\n')
    with pytest.raises(SystemExit):
        tclap(["order", str(folders / "reference"), "--prompts", str(tmp_path / "p.jsonl"), "--detector", str(DETECTOR)])
    assert "p.jsonl:1: needs an `id` and a non-empty `events` list" in capsys.readouterr().err


def test_order_script_refuses_two_clips_for_one_prompt(folders, tmp_path, capsys):
    shutil.copytree(folders / "reference", tmp_path / "clips")
    first = sorted((tmp_path / "clips").glob("*.wav"))[0]
    shutil.copy(first, first.with_suffix(".flac"))  # which of the two would be scored is anyone's guess
    with pytest.raises(SystemExit):
        tclap(["order", str(tmp_path / "clips"), "--prompts", str(folders / "prompts.jsonl"), "--detector", str(DETECTOR)])
    assert f"two files share the stem {first.stem!r}" in capsys.readouterr().err


def test_too_short_files_are_named_and_odd_rates_resampled(folders, tmp_path, capsys):
    import soundfile as sf

    for side in ("reference", "generated"):
        shutil.copytree(folders / side, tmp_path / side)
    first = sorted((tmp_path / "generated").glob("*.wav"))[0]
    audio, rate = sf.read(first)
    sf.write(first, audio[::2], rate // 2)  # 8 kHz: resampled on loading, still scored
    assert run_json(capsys, ["kl", str(tmp_path / "reference"), str(tmp_path / "generated"),
                             "--classifier", f"detector:{DETECTOR}"])["pairs"] == 3
    sf.write(first, np.zeros(100), rate)  # 6 ms
    with pytest.raises(SystemExit):
        tclap(["kl", str(tmp_path / "reference"), str(tmp_path / "generated"), "--classifier", f"detector:{DETECTOR}"])
    assert f"{first.name}: too short (0.006 s < 0.1 s)" in capsys.readouterr().err


def test_several_waveforms_per_prompt_are_all_scored_against_their_prompt(folders, tmp_path, capsys):
    (tmp_path / "clips").mkdir()
    for clip in sorted((folders / "reference").glob("*.wav")):
        for k in range(2):
            shutil.copy(clip, tmp_path / "clips" / f"{clip.stem}_{k}.wav")
    shutil.copy(clip, tmp_path / "clips" / "stray.wav")
    with pytest.warns(UserWarning, match="1 clip.s. match no prompt id and are not scored: stray"):
        order = run_json(capsys, ["order", str(tmp_path / "clips"), "--prompts", str(folders / "prompts.jsonl"),
                                  "--detector", str(DETECTOR)])
    single = run_json(capsys, ["order", str(folders / "reference"), "--prompts", str(folders / "prompts.jsonl"),
                               "--detector", str(DETECTOR)])
    assert order["clips"] == 6 and order["order_accuracy"] == pytest.approx(single["order_accuracy"])
    (tmp_path / "clips" / "stray.wav").unlink()
    kl = run_json(capsys, ["kl", str(folders / "reference"), str(tmp_path / "clips"), "--classifier", f"detector:{DETECTOR}"])
    assert kl["pairs"] == 6 and kl["kl"] == pytest.approx(0.0, abs=1e-5)  # each waveform is its reference


def test_audio_in_subfolders_is_refused_not_dropped(folders, tmp_path, capsys):
    for side in ("reference", "generated"):
        shutil.copytree(folders / side, tmp_path / side)
        (tmp_path / side / "sub").mkdir()
        shutil.copy(sorted((folders / side).glob("*.wav"))[0], tmp_path / side / "sub" / "b.wav")
    for command in (["kl", "--classifier", f"detector:{DETECTOR}"], ["fad", "--embedder", f"detector:{DETECTOR}"]):
        with pytest.raises(SystemExit):
            tclap([command[0], str(tmp_path / "reference"), str(tmp_path / "generated"), *command[1:]])
        assert "holds audio in subfolders (sub/b.wav); clips pair by file name" in capsys.readouterr().err


def test_strict_scoring_refuses_a_truncated_wav(folders, tmp_path, capsys):
    from test_audio import truncated_wav

    for side in ("reference", "generated"):
        shutil.copytree(folders / side, tmp_path / side)
    victim = truncated_wav(sorted((tmp_path / "generated").glob("*.wav"))[0])
    argv = ["kl", str(tmp_path / "reference"), str(tmp_path / "generated"), "--classifier", f"detector:{DETECTOR}"]
    with pytest.warns(UserWarning, match=f"{victim.name}: the WAV header declares"):
        run_json(capsys, argv)
    with pytest.raises(SystemExit) as exit_:
        tclap(argv + ["--strict"])
    assert exit_.value.code == 2 and f"{victim.name}: the WAV header declares 16000 samples" in capsys.readouterr().err


def test_order_reads_audiotime_captions_and_scores_steam_rates_and_segment_f1(folders, mixup_dir, tmp_path, capsys):
    """AudioTime's JSON as the prompts: the reference clips against their true spans (the detector's own
    floor, as STEAM reports for real clips) and their order-swapped twins against the same captions."""
    records = {r["id"]: r for r in read_manifest(mixup_dir / MANIFEST)}
    items = {stem: {"caption": records[stem]["caption"],
                    "event": {e["category"]: [[e["onset"], e["offset"]]] for e in records[stem]["events"]}}
             for stem in sorted(p.stem for p in (folders / "reference").glob("*.wav"))}
    (tmp_path / "ordering_caption.json").write_text(json.dumps(items))
    argv = ["--prompts", str(tmp_path / "ordering_caption.json"), "--detector", str(DETECTOR)]
    real = run_json(capsys, ["order", str(folders / "reference"), *argv])
    with pytest.warns(UserWarning, match="skipped 1 non-audio"):
        swapped = run_json(capsys, ["order", str(folders / "generated"), *argv])
    for scores in (real, swapped):
        assert scores["clips"] == 3 and scores["ordering_error_rate"] == pytest.approx(1 - scores["order_accuracy"])
    assert real["order_accuracy"] >= 2 / 3 and swapped["order_accuracy"] <= 1 / 3
    assert real["segment_f1"] >= 0.7 > swapped["segment_f1"]


def test_order_names_the_prompt_whose_event_the_detector_does_not_know(folders, tmp_path, capsys):
    items = {p.stem: {"caption": "a dog barks, then a siren", "event": {"Dog": [[0.5, 1.0]], "siren": [[2.0, 3.0]]}}
             for p in (folders / "reference").glob("*.wav")}
    (tmp_path / "t.json").write_text(json.dumps(items))
    with pytest.raises(SystemExit) as exit_:
        tclap(["order", str(folders / "reference"), "--prompts", str(tmp_path / "t.json"), "--detector", str(DETECTOR)])
    first = next(iter(items))
    assert exit_.value.code == 2
    assert f"t.json: {first!r}: event class(es) ['Dog'] unknown to the detector (3 prompt(s) in all" in \
        capsys.readouterr().err
