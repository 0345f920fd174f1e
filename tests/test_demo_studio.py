"""The demo without a browser: comparisons on the shipped checkpoints, events, rating sets, callbacks."""
from __future__ import annotations

import csv
import inspect
import re
from pathlib import Path

import gradio as gr
import matplotlib.pyplot as plt
import numpy as np
import pytest

from audioldm_cond.vocoder import GriffinLimVocoder
from tclap_demo.app import DemoApp, DemoConfig, config_from_args, mos_chart, parser
from tclap_demo.rating_set import build_rating_set, presentation_order, read_clip, read_rating_set
from tclap_demo.ratings import RatingStore, summarise
from tclap_demo.studio import (SHIPPED, Clip, Request, Settings, Studio, judge, parse_pipelines, requested, swapped_prompt,
                         tally, verdict_text)
from tclap_eval.order import judge_clip
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
    table, chart = app.results()
    assert "| CLAP |" in table and "Ratings in all: 4." in table and chart.ndim == 3


def test_a_failing_generation_is_an_error_and_the_app_keeps_serving(studio, rating_set, tmp_path, monkeypatch):
    app = DemoApp(studio, RatingStore(tmp_path / "r.sqlite"), read_rating_set(rating_set),
                  DemoConfig(seconds=1.0))
    pipe = studio.pipelines["T-CLAP"]
    monkeypatch.setattr(type(pipe), "__call__", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("out of memory")))
    with pytest.raises(gr.Error, match="generation failed: RuntimeError: out of memory"):
        app.compare("bell and then beep", 0, 2, 2.5)
    monkeypatch.undo()
    audio, image, events = app.compare("bell and then beep", 0, 2, 2.5)[3:]
    assert audio[1].shape == (16000,) and image.ndim == 3 and "detected events: " in events


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
    from tclap_demo.rating_set import main

    (tmp_path / "prompts.txt").write_text("siren followed by knock\n")
    main(["--pipeline", f"A={SHIPPED / 'clap'}", "--pipeline", f"B={SHIPPED / 'tclap'}",
          "--prompts", str(tmp_path / "prompts.txt"), "--out", str(tmp_path / "set"), "--seconds", "1", "--steps", "2"])
    samples = read_rating_set(tmp_path / "set")
    assert sorted(s.model for s in samples.values()) == ["A", "B"]
    assert {s.prompt for s in samples.values()} == {"siren followed by knock"}


CLASSES = ["beep", "bell", "drum_roll", "knock", "siren"]


@pytest.mark.parametrize("prompt, classes, ordered", [
    ("siren followed by knock", ["siren", "knock"], True),
    ("knock, preceded by siren", ["siren", "knock"], True),   # named in reverse: asked in time order
    ("a drum roll after two beeps", ["beep", "drum_roll"], True),
    ("beep, then siren, then beep", ["beep", "siren", "beep"], True),
    ("siren and knock", ["siren", "knock"], False),            # no ordering word: no order asked
    ("drum_roll, then a beep", ["drum_roll", "beep"], True),   # class names as the detector spells them
    ("a sound of bell", ["bell"], False),
    ("a dog barks", [], False),
])
def test_requested_classes_come_in_the_order_the_prompt_asks(prompt, classes, ordered):
    assert requested(prompt, CLASSES) == Request(classes, ordered)


def activity(**spans) -> np.ndarray:
    """(50, len(CLASSES)) activity with each named class active over its (first, end) frames."""
    active = np.zeros((50, len(CLASSES)), dtype=bool)
    for name, (first, end) in spans.items():
        active[first:end, CLASSES.index(name)] = True
    return active


@pytest.mark.parametrize("spans, prompt, words, kind", [
    ({"siren": (10, 20), "knock": (30, 40)}, "siren followed by knock", "in order: siren 1.0 s → knock 3.0 s",
     "in order"),
    ({"siren": (30, 40), "knock": (10, 20)}, "siren followed by knock", "wrong order: knock 1.0 s → siren 3.0 s",
     "wrong order"),
    ({"siren": (10, 30), "knock": (12, 28)}, "siren followed by knock",
     "events overlap: siren 1.0-3.0 s, knock 1.2-2.8 s", "overlap"),
    ({"siren": (10, 20)}, "siren followed by knock", "knock not detected", "event missing"),
    ({}, "siren followed by knock", "siren and knock not detected", "event missing"),
    ({"knock": (5, 9), "siren": (10, 20)}, "siren and knock", "found: knock 0.5 s → siren 1.0 s", "in order"),
    ({"bell": (10, 20)}, "a sound of bell", "found: bell 1.0 s", "in order"),
    ({"drum_roll": (30, 40), "bell": (10, 20)}, "drum roll after bell", "in order: bell 1.0 s → drum roll 3.0 s",
     "in order"),
])
def test_verdict_words_for_each_steam_error(spans, prompt, words, kind):
    request = requested(prompt, CLASSES)
    order = judge(activity(**spans), request, CLASSES)
    if request.ordered:
        assert order == judge_clip(activity(**spans), [CLASSES.index(c) for c in request.classes])
    assert verdict_text(order, request, frame_seconds=0.1) == words
    clip = Clip("m", np.zeros(1, np.float32), 16000, [], order=order, verdict=words)
    assert tally([clip, Clip("m", np.zeros(1, np.float32), 16000, [])]) == {
        k: int(k == kind) for k in ("in order", "wrong order", "overlap", "event missing")}


def test_prompts_naming_no_known_sound_are_refused_before_generating(studio, monkeypatch):
    monkeypatch.setattr(type(studio.pipelines["CLAP"]), "__call__", lambda *a, **k: pytest.fail("generated"))
    with pytest.raises(DataError, match="names none of the sounds this demo's models know .*beep, bell, buzz"):
        studio.compare("a dog barks", QUICK)
    assert Studio(studio.pipelines).check_prompt("a dog barks") == "a dog barks"  # no detector: no check


def test_the_verdict_is_the_evaluations_judgement_of_the_clip(studio):
    """Same rule and code as eval/order.py: judge_clip on the detector's activity of the generated clip."""
    clips = studio.compare("siren followed by knock", Settings(seconds=4.0, steps=4, seed=1))
    for clip in clips:
        active = studio.detector.activity(clip.audio)
        order = judge_clip(active, [studio.detector.classes.index("siren"), studio.detector.classes.index("knock")])
        request = requested("siren followed by knock", studio.detector.classes)
        assert clip.order == order
        assert clip.verdict == verdict_text(order, request, studio.detector.frame_seconds)
        step = studio.detector.frame_seconds  # every segment the verdict cites is drawn, however short
        drawn = {(e.name, e.start, e.end) for e in clip.events}
        assert all((c, s[0] * step, s[1] * step) in drawn for c, s in zip(request.classes, order.segments) if s)


def test_n_seed_comparison_repeats_the_single_view_per_seed(studio, rating_set, tmp_path):
    runs = studio.compare_seeds("bell and then beep", QUICK, 2)
    single = studio.compare("bell and then beep", Settings(seconds=1.0, steps=2, seed=1))
    for index, (name, clips) in enumerate(runs.items()):
        assert [c.seed for c in clips] == [0, 1] and np.array_equal(clips[1].audio, single[index].audio)
    with pytest.raises(DataError, match="seeds: must be within 1-16"):
        studio.compare_seeds("bell and then beep", QUICK, 17)
    app = DemoApp(studio, RatingStore(tmp_path / "r.sqlite"), read_rating_set(rating_set), DemoConfig(seconds=1.0))
    outputs = app.compare_seeds("bell and then beep", 0, 2, 2.5, 2)
    counts, gallery, _, *_ = outputs
    assert re.fullmatch(r"\*\*\d of 2 in order\*\*; \d wrong order, \d overlap, \d event missing", counts)
    assert [caption.split(":")[0] for _, caption in gallery] == ["seed 0", "seed 1"]
    played = outputs[-2]
    assert app.player("T-CLAP")(played, gr.SelectData(None, {"index": 1, "value": None})) == played["T-CLAP"][1]


def test_mos_chart_bars_are_the_means_and_whiskers_the_intervals():
    rows = [summarise("A", "mos_r", [3, 4, 5]), summarise("A", "mos_t", [2, 2, 5]),
            summarise("B", "mos_r", [1, 2]), summarise("B", "mos_t", [4])]
    figure = mos_chart(rows)
    ax = figure.axes[0]
    heights = [bar.get_height() for bar in ax.patches]
    assert heights == pytest.approx([4.0, 1.5, 3.0, 4.0])  # MOS_r of A, B, then MOS_t of A, B
    # 95% Student-t half-width, by hand: mean 4, sd 1, n 3 -> t(0.975, 2) = 4.3027 / sqrt(3)
    whiskers = [line.get_segments() for line in ax.collections]
    lengths = sorted(round(float(s[1][1] - s[0][1]) / 2, 3) for seg in whiskers for s in seg)
    assert 2.484 in lengths and 0.0 in lengths  # A's MOS_r interval; B's MOS_t has one rating: no whisker
    plt.close(figure)


class _StubDetector:
    """A detector whose activity is fixed: knock in one 0.064-s frame, then bell for 1 s (0.064-s frames)."""

    classes, sample_rate, frame_seconds = CLASSES, 16000, 0.064

    def activity(self, audio):
        return activity(knock=(5, 6), bell=(10, 26))


def test_a_short_segment_the_verdict_cites_is_drawn(studio):
    judged = Studio(studio.pipelines, _StubDetector())._judged(
        Clip("m", np.zeros(16000, np.float32), 16000, []), requested("bell followed by knock", CLASSES))
    assert judged.verdict == "wrong order: knock 0.3 s → bell 0.6 s"
    assert [e.name for e in judged.events] == ["knock", "bell"]  # the 1-frame knock is under MIN_EVENT_SECONDS
