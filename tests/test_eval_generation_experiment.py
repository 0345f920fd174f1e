"""`tclap experiment generation` on the shipped offline pipelines and the test fixture's mixed-up clips."""
from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from audioldm_world import save_tiny_clap
from tclap_demo.studio import SHIPPED
from tclap_eval.detector import EventDetector
from tclap_eval.generation_experiment import (METRICS, GenerationExperimentConfig, conditioning_encoder, decoded,
                                              near_silent, prompt_set, run_generation, single_event_found)
from tclap.audio import load_audio
from tclap.data.mixup import MANIFEST, read_manifest
from tclap.errors import DataError


@pytest.fixture(scope="module")
def config(mixup_dir, tmp_path_factory):
    judge = save_tiny_clap(mixup_dir, tmp_path_factory.mktemp("judge"), seed=5)
    return GenerationExperimentConfig(
        pipelines={"clap": str(SHIPPED / "clap"), "tclap": str(SHIPPED / "tclap")}, mixup=str(mixup_dir),
        clips=2, seeds=[0, 1], detector=str(SHIPPED / "detector.pt"), judge=str(judge), seconds=2.0, steps=2,
        batch_size=4, single_event_waveforms=2, single_event_references=1)


def test_prompts_ask_for_both_orders_with_the_clip_that_plays_them(mixup_dir):
    prompts = prompt_set(mixup_dir, "test", 2)
    first = next(r for r in read_manifest(mixup_dir / MANIFEST) if r["split"] == "test")
    plain, swapped = prompts[0], prompts[1]
    assert (plain.id, swapped.id) == (first["id"], first["id"] + "-swapped")
    assert (plain.caption, swapped.caption) == (first["caption"], first["neg_caption"])
    assert plain.events == tuple(reversed(swapped.events)) and plain.events[0] == first["events"][0]["category"]
    assert swapped.reference == mixup_dir / first["neg_audio"] and len(prompts) == 4
    with pytest.raises(DataError, match="no clips in split 'nope'"):
        prompt_set(mixup_dir, "nope", 2)


@pytest.mark.slow
def test_generation_experiment_writes_table_4(config, tmp_path):
    summary = run_generation(tmp_path, config)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert set(saved["models"]) == {"reference", "resynthesised", "clap", "tclap"} and saved["models"] == summary
    assert len(list((tmp_path / "resynthesised").glob("*.wav"))) == 4  # the references through the VAE and vocoder
    for model in ("clap", "tclap"):
        assert summary[model]["seeds"] == 2 and set(METRICS) <= set(summary[model])
        values = [run["order_accuracy"] for run in saved["per_seed"][model]]
        assert summary[model]["order_accuracy"] == pytest.approx(np.mean(values))
        mean = sum(values) / 2  # the sample std of two seeds, by hand: |a - b| / sqrt(2)
        assert summary[model]["order_accuracy_std"] == pytest.approx(
            (((values[0] - mean) ** 2 + (values[1] - mean) ** 2) / (2 - 1)) ** 0.5)
        for seed, run in zip((0, 1), saved["per_seed"][model]):
            rows = list(csv.DictReader(open(tmp_path / model / f"seed{seed}" / "clips.csv")))
            assert len(rows) == 4 and run["order_accuracy"] == pytest.approx(
                np.mean([r["in_order"] == "True" for r in rows]))
    # the references scored against themselves: no divergence, no distance
    assert summary["reference"]["kl"] == pytest.approx(0, abs=1e-5)  # audioldm_eval adds 1e-6 inside the log
    assert summary["reference"]["fad"] == pytest.approx(0, abs=1e-4)
    assert "| tclap |" in (tmp_path / "table.md").read_text()
    # the single-event check: every class alone, 2 clips per seed; its share recomputed from the clips
    detector = EventDetector.load(config.detector)
    for model in ("clap", "tclap"):
        found = np.array([single_event_found(decoded(
            [tmp_path / model / f"single_event_seed{seed}" / f"single-{c}_{k}.wav" for c in detector.classes
             for k in range(2)], detector.sample_rate), [c for c in detector.classes for _ in range(2)], detector)
            for seed in (0, 1)])
        assert saved["single_event"][model]["found"] == pytest.approx(found.mean())
        assert saved["single_event"][model]["clips"] == 2 * 12 * 2
        peaks = [np.abs(load_audio(p, 16000)).max() for p in (tmp_path / model).glob("single_event_seed*/*.wav")]
        assert saved["single_event"][model]["near_silent"] == pytest.approx(np.mean(np.array(peaks) < 0.03))
        siren = 2 * detector.classes.index("siren")
        assert saved["single_event"][model]["per_class"]["siren"] == pytest.approx(found[:, siren:siren + 2].mean())
    # its ceiling: one library source per class of the split's clips, as is and through the VAE and vocoder
    resynthesised = sorted((tmp_path / "single_event_resynthesised").glob("*.wav"))
    assert saved["single_event"]["resynthesised"]["clips"] == len(resynthesised) > 0
    assert saved["single_event"]["reference"]["found"] >= 0.5  # real library clips: the detector finds most
    assert "single event found %" in (tmp_path / "table.md").read_text()
    assert saved["environment"]["packages"]["diffusers"] == __import__("diffusers").__version__
    # a rerun keeps the generated clips
    clip = tmp_path / "tclap" / "seed1" / f"{rows[0]['id']}.wav"
    stamp = clip.stat().st_mtime_ns
    run_generation(tmp_path, config)
    assert clip.stat().st_mtime_ns == stamp


def test_single_event_found_on_library_files_and_silence(world, tmp_path):
    """Held-out single-event files are found as their own class (the detector's 99 %), silence as none."""
    import soundfile as sf

    from tclap.data.library import read_library

    detector = EventDetector.load(SHIPPED / "detector.pt")
    files = [f for f in read_library(world).files if f.fold == 5][:6]
    silence = tmp_path / "silence.wav"
    sf.write(silence, np.zeros(32000, dtype=np.float32), 16000)
    found = single_event_found(decoded([f.path for f in files] + [silence] * 2, detector.sample_rate),
                               [f.category for f in files] + [files[0].category, files[1].category], detector)
    assert found.tolist() == [True] * 6 + [False, False]
    quiet = tmp_path / "quiet.wav"  # peak 0.029 of full scale: near-silent; 0.031: not
    sf.write(quiet, np.full(32000, 0.029, dtype=np.float32), 16000)
    sf.write(tmp_path / "audible.wav", np.full(32000, 0.031, dtype=np.float32), 16000)
    assert near_silent(decoded([silence, quiet, tmp_path / "audible.wav", files[0].path], 16000)).tolist() == [
        True, True, False, False]


def test_a_judge_that_conditions_a_pipeline_is_refused(config, tmp_path):
    pipeline = tmp_path / "pipeline"
    shutil.copytree(SHIPPED / "tclap", pipeline)
    provenance = json.loads((pipeline / "audioldm_provenance.json").read_text())
    provenance["config"]["model"]["tclap"] = config.judge
    (pipeline / "audioldm_provenance.json").write_text(json.dumps(provenance))
    assert conditioning_encoder(pipeline) == config.judge
    with pytest.raises(DataError, match="judge is also a conditioning encoder"):
        run_generation(tmp_path / "out", GenerationExperimentConfig(**{**config.__dict__,
                                                                      "pipelines": {"x": str(pipeline)}}))


@pytest.mark.parametrize("name, message", [("../up", "path separator"), ("resynthesised", "references' row")])
def test_a_pipeline_name_that_cannot_be_a_folder_of_its_own_is_refused(name, message):
    with pytest.raises(DataError, match=message):
        GenerationExperimentConfig(pipelines={name: str(SHIPPED / "clap")})
