"""The demo without a browser: comparisons on the shipped checkpoints, events, rating sets, callbacks."""
from __future__ import annotations

import csv
import inspect
from pathlib import Path

import gradio as gr
import numpy as np
import pytest

from audioldm_cond.vocoder import GriffinLimVocoder
from demo.app import DemoApp, DemoConfig, config_from_args, parser
from demo.rating_set import build_rating_set, presentation_order, read_clip, read_rating_set
from demo.ratings import RatingStore
from demo.studio import SHIPPED, Settings, Studio, parse_pipelines, swapped_prompt
from tclap.audio import load_audio
from tclap.data.mixup import MANIFEST, read_manifest
from tclap.errors import DataError

QUICK = Settings(seconds=1.0, steps=2, guidance_scale=2.5, seed=0)


@pytest.fixture(scope="module")
def studio():
    return Studio.load(DemoConfig().pipelines, DemoConfig().detector, max_prompt_chars=60)


@pytest.fixture(scope="module")
def rating_set(studio, tmp_path_factory):
    folder = tmp_path_factory.mktemp("rating_set")
    build_rating_set(studio, ["bell and then beep", "beep and then bell"], folder, QUICK)
    return folder


def test_shipped_checkpoints_are_small_and_complete():
    size = sum(p.stat().st_size for p in SHIPPED.rglob("*") if p.is_file())
    assert size <= 30 * 2**20
    vocoder = Path(inspect.getfile(GriffinLimVocoder)).read_text()
    for name in ("clap", "tclap"):
        assert (SHIPPED / name / "model_index.json").is_file() and (SHIPPED / name / "audioldm_provenance.json").is_file()
        # the copy a pipeline folder carries for plain diffusers is the module our loader runs, unchanged
        assert (SHIPPED / name / "vocoder" / "griffin_lim_vocoder.py").read_text() == vocoder
    assert read_rating_set(SHIPPED / "rating_set")  # made from the shipped pair
    how = (SHIPPED / "README.md").read_text()
    for command in ("train_tclap.py", "train_vae.py", "train_audioldm.py", "eval/detector.py", "demo/rating_set.py"):
        assert command in how


def test_compare_runs_every_pipeline_with_the_same_seed(studio):
    clips = studio.compare("siren followed by knock", QUICK)
    assert [c.model for c in clips] == ["CLAP", "T-CLAP"]
    for clip in clips:
        assert clip.audio.shape == (clip.sample_rate,) and np.isfinite(clip.audio).all()
    again = studio.compare("siren followed by knock", QUICK)
    assert all(np.array_equal(a.audio, b.audio) for a, b in zip(clips, again))
    assert not np.array_equal(clips[0].audio, clips[1].audio)


@pytest.mark.parametrize("prompt, message", [("  ", "prompt: empty"), ("x" * 61, "61 characters; the limit is 60")])
def test_bad_prompts_are_refused(studio, prompt, message):
    with pytest.raises(DataError, match=message):
        studio.compare(prompt, QUICK)


def test_settings_are_range_checked():
    with pytest.raises(DataError, match="steps: must be within 1-200"):
        Settings(steps=0)


def test_swap_uses_the_negative_caption_rules():
    assert swapped_prompt("bell and then beep") == "beep and then bell"
    with pytest.raises(DataError, match="cannot swap the event order"):
        swapped_prompt("a bell rings")


def test_detected_events_follow_the_mixed_up_clips_order(studio, mixup_dir):
    records = [r for r in read_manifest(mixup_dir / MANIFEST) if r["split"] == "test"]
    right = 0
    for record in records:
        onsets = {}  # each class's first detected onset
        for event in studio.events(load_audio(mixup_dir / record["audio"], 16000), 16000):
            onsets.setdefault(event.name, event.start)
        truth = {e["category"]: e["onset"] for e in sorted(record["events"], key=lambda e: -e["onset"])}
        found = sorted((name for name in onsets if name in truth), key=onsets.get)
        right += found == sorted(truth, key=truth.get) and all(abs(onsets[c] - t) < 0.3 for c, t in truth.items())
    assert right >= 0.8 * len(records)


def test_rating_set_hides_the_model_and_reads_back(studio, rating_set):
    samples = read_rating_set(rating_set)
    assert len(samples) == 4 and {s.model for s in samples.values()} == {"CLAP", "T-CLAP"}
    for sample in samples.values():
        assert "clap" not in sample.sample.lower() and "clap" not in sample.file.name.lower()
        rate, audio = read_clip(sample)
        assert rate == 16000 and audio.shape == (16000,)
    first = presentation_order("ann", samples)
    assert first == presentation_order("ann", samples) and sorted(first) == sorted(samples)
    assert first != presentation_order("bob", samples)


@pytest.mark.parametrize("edit, message", [
    (lambda rows: [{k: v for k, v in r.items() if k != "model"} for r in rows], "missing column"),
    (lambda rows: [{**rows[0], "file": "../escape.wav"}], "is not a file in"),
    (lambda rows: [rows[0], rows[0]], "listed twice"),
    (lambda rows: [{**rows[0], "prompt": ""}], "csv:2: empty field"),
])
def test_bad_rating_set_manifests_are_named(rating_set, tmp_path, edit, message):
    rows = list(csv.DictReader(open(rating_set / "manifest.csv")))
    for row in rows:
        (tmp_path / row["file"]).write_bytes((rating_set / row["file"]).read_bytes())
    rows = edit(rows)
    with open(tmp_path / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(DataError, match=message):
        read_rating_set(tmp_path)


def test_rating_flow_stores_the_hidden_model(studio, rating_set, tmp_path):
    app = DemoApp(studio, RatingStore(tmp_path / "r.sqlite"), read_rating_set(rating_set), DemoConfig())
    sample, progress, text, audio, *_ = app.next_sample("ann")
    assert progress == "Clip 1 of 4" and text.startswith("**Text:**") and audio[0] == 16000
    with pytest.raises(gr.Error, match="mos_t"):
        app.submit("ann", sample, "4", None)
    nxt = app.submit("ann", sample, "4", "2")
    assert nxt[1] == "Clip 2 of 4" and nxt[0] != sample
    [stored] = app.store.ratings()
    assert (stored.sample, stored.model, stored.mos_r, stored.mos_t) == (sample, app.samples[sample].model, 4, 2)
    with pytest.raises(gr.Error, match="already rated"):
        app.submit("ann", sample, "5", "5")
    for _ in range(3):
        nxt = app.submit("ann", nxt[0], "3", "3")
    assert nxt[0] is None and nxt[1].startswith("All 4 clips rated")
    assert "| CLAP |" in app.results() and "Ratings in all: 4." in app.results()


def test_a_failing_generation_is_an_error_and_the_app_keeps_serving(studio, rating_set, tmp_path, monkeypatch):
    app = DemoApp(studio, RatingStore(tmp_path / "r.sqlite"), read_rating_set(rating_set),
                  DemoConfig(seconds=1.0))
    pipe = studio.pipelines["T-CLAP"]
    monkeypatch.setattr(type(pipe), "__call__", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("out of memory")))
    with pytest.raises(gr.Error, match="generation failed: RuntimeError: out of memory"):
        app.compare("bell and then beep", 0, 2, 2.5)
    monkeypatch.undo()
    audio, image, events = app.compare("bell and then beep", 0, 2, 2.5)[3:]
    assert audio[1].shape == (16000,) and image.ndim == 3 and events.startswith("detected events")


def test_config_flags_and_files(tmp_path):
    assert parse_pipelines(["A=x", "B = y"]) == {"A": "x", "B": "y"}
    with pytest.raises(DataError, match="NAME=DIR"):
        parse_pipelines(["just-a-dir"])
    cfg = config_from_args(parser().parse_args(["--pipeline", "A=x", "--no-detector", "--port", "9000"]))
    assert (cfg.pipelines, cfg.detector, cfg.port, cfg.host) == ({"A": "x"}, None, 9000, "127.0.0.1")
    assert cfg.rating_set is None  # the shipped rating set belongs to the shipped pair only
    assert config_from_args(parser().parse_args([])).rating_set == str(SHIPPED / "rating_set")
    shipped_config = Path(__file__).resolve().parent.parent / "configs" / "demo" / "offline.yaml"
    assert config_from_args(parser().parse_args(["--config", str(shipped_config)])).steps == 20
    (tmp_path / "demo.yaml").write_text("demo:\n  steps: 5\n  colour: red\n")
    with pytest.raises(DataError, match="unknown key.*colour"):
        config_from_args(parser().parse_args(["--config", str(tmp_path / "demo.yaml")]))


def test_tclap_demo_hands_its_flags_to_the_app(capsys):
    from tclap.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--pipeline", "no-name-here"])
    assert exit_.value.code == 2 and "tclap demo: error: --pipeline: expected NAME=DIR" in capsys.readouterr().err


def test_rating_set_cli_writes_a_set_the_app_reads(tmp_path):
    from demo.rating_set import main

    (tmp_path / "prompts.txt").write_text("siren followed by knock\n")
    main(["--pipeline", f"A={SHIPPED / 'clap'}", "--pipeline", f"B={SHIPPED / 'tclap'}",
          "--prompts", str(tmp_path / "prompts.txt"), "--out", str(tmp_path / "set"), "--seconds", "1", "--steps", "2"])
    samples = read_rating_set(tmp_path / "set")
    assert sorted(s.model for s in samples.values()) == ["A", "B"]
    assert {s.prompt for s in samples.values()} == {"siren followed by knock"}
