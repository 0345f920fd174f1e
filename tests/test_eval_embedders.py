"""Embedders: clear errors on the real (checkpoint) paths, and the offline CLAP stand-in."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from tclap_eval.embedders import (AUDIOSET_LABELS, PANNS_16K, PANNS_SED_32K, ClapAudioEmbedder, PannsClassifier,
                                  PannsDetector, VGGishEmbedder, _bare_vggish, _panns_models, audio_files, clip_logits,
                                  load_scorer, pooled_embeddings)
from tclap.audio import write_wav
from tclap.errors import DataError
from tclap.model import ModelConfig, build_tiny, save_clap
from required import module


@pytest.mark.parametrize("model", [VGGishEmbedder, PannsClassifier])
def test_missing_checkpoint_names_the_file(model, tmp_path):
    with pytest.raises(DataError, match="missing.pth: .*not found"):
        model(tmp_path / "missing.pth")


def _forget(package: str, monkeypatch) -> None:
    """Drop `package` and its submodules from sys.modules for one test, so the next import starts afresh."""
    for name in [m for m in sys.modules if m.split(".")[0] == package]:
        monkeypatch.delitem(sys.modules, name)


@pytest.mark.parametrize("model, package", [(VGGishEmbedder, "torchvggish"), (PannsClassifier, "panns_inference")])
def test_missing_package_is_named(model, package, tmp_path, monkeypatch):
    _forget(package, monkeypatch)
    monkeypatch.setitem(sys.modules, package, None)  # what an uninstalled package looks like to import
    checkpoint = tmp_path / "weights.pth"
    checkpoint.write_bytes(b"")
    with pytest.raises(DataError, match=f"optional package '{package}'"):
        model(checkpoint)


def _clip(seconds: float, rate: int = 16000) -> np.ndarray:
    return (0.1 * np.random.default_rng(0).standard_normal(int(seconds * rate))).astype(np.float32)


@pytest.fixture(scope="module")
def vggish_checkpoint(tmp_path_factory):
    """Randomly initialised weights with the real checkpoint's keys: the package's code path, no download."""
    module("torchvggish")
    path = tmp_path_factory.mktemp("vggish") / "vggish-random.pth"
    torch.manual_seed(0)
    torch.save(_bare_vggish().state_dict(), path)
    return path


@pytest.fixture(scope="module")
def panns_checkpoint(tmp_path_factory):
    """A random CNN14 16 kHz saved as the released checkpoints are (weights under "model")."""
    module("panns_inference")
    path = tmp_path_factory.mktemp("panns") / "cnn14-random.pth"
    torch.manual_seed(0)
    torch.save({"model": _panns_models().Cnn14(**PANNS_16K).state_dict()}, path)
    return path


def test_vggish_gives_one_unrectified_frame_per_0_96_s(vggish_checkpoint):
    embedder = VGGishEmbedder(vggish_checkpoint)
    audio = _clip(2.5)
    frames = embedder.frame_embeddings(audio)
    assert frames.shape == (2, 128)
    assert (frames < 0).any()  # audioldm_eval's cut: the last ReLU is dropped
    full = _bare_vggish()  # the package's own network with its final ReLU, same weights
    full.load_state_dict(torch.load(vggish_checkpoint, weights_only=True))
    with torch.no_grad():
        examples = torch.as_tensor(embedder._examples(audio, 16000), dtype=torch.float32).reshape(-1, 1, 96, 64)
        np.testing.assert_allclose(np.maximum(frames, 0), full.eval()(examples).numpy(), rtol=1e-5, atol=1e-6)


def test_panns_logits_are_the_clipwise_output_before_its_sigmoid(panns_checkpoint):
    classifier = PannsClassifier(panns_checkpoint)
    audio = _clip(2.0)
    logits = classifier.class_logits(audio)
    with torch.no_grad():
        output = classifier.model(torch.as_tensor(audio)[None])
    assert logits.shape == (527,)
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)), output["clipwise_output"][0].numpy(), rtol=1e-5, atol=1e-7)
    assert classifier.frame_embeddings(audio).shape == (1, 2048)


def test_panns_import_downloads_nothing(panns_checkpoint, tmp_path, monkeypatch):
    """panns_inference's __init__ wgets a label CSV into ~/panns_data; loading CNN14 must not run it."""
    _forget("panns_inference", monkeypatch)
    monkeypatch.setenv("HOME", str(tmp_path))
    PannsClassifier(panns_checkpoint)
    assert not (tmp_path / "panns_data").exists()


@pytest.mark.parametrize("kind, seconds", [("vggish", 0.9), ("panns", 0.25)])
def test_clip_too_short_for_the_model_is_named(kind, seconds, vggish_checkpoint, panns_checkpoint, tmp_path):
    model = {"vggish": lambda: VGGishEmbedder(vggish_checkpoint), "panns": lambda: PannsClassifier(panns_checkpoint)}[kind]()
    write_wav(tmp_path / "ok.wav", _clip(model.min_seconds + 0.001), 16000)
    write_wav(tmp_path / "blip.wav", _clip(seconds), 16000)
    pooled_embeddings(model, [tmp_path / "ok.wav"])  # the threshold itself is enough for one frame
    with pytest.raises(DataError, match="blip.wav: too short"):
        pooled_embeddings(model, [tmp_path / "blip.wav"])


@pytest.fixture(scope="module")
def clap_dir(tmp_path_factory):
    model, processor = build_tiny(ModelConfig(vocab_size=300), ["a beep followed by a bell"], seed=0)
    return save_clap(model, processor, tmp_path_factory.mktemp("clap") / "tiny", {"made_by": "test"})


def test_clap_stand_in_embeds_one_vector_per_window(clap_dir, tmp_path):
    embedder = ClapAudioEmbedder(clap_dir)
    rate, window = embedder.sample_rate, embedder.encoder.window
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(2 * window + window // 2)).astype(np.float32)
    frames = embedder.frame_embeddings(audio)
    assert frames.shape == (3, embedder.encoder.model.config.projection_dim)
    np.testing.assert_allclose(np.linalg.norm(frames, axis=1), 1.0, rtol=1e-5)

    write_wav(tmp_path / "a.wav", audio, rate)
    write_wav(tmp_path / "b.wav", audio[:window], rate)
    pooled = pooled_embeddings(embedder, [tmp_path / "a.wav", tmp_path / "b.wav"])
    assert pooled.shape == (4, frames.shape[1])
    np.testing.assert_allclose(pooled[:3], frames, atol=1e-4)  # 16-bit wav round trip


def test_files_at_another_rate_are_resampled(clap_dir, tmp_path):
    embedder = ClapAudioEmbedder(clap_dir)
    rate = embedder.sample_rate
    t = np.arange(2 * rate) / rate
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    write_wav(tmp_path / "native.wav", tone, rate)
    t2 = np.arange(4 * rate) / (2 * rate)
    write_wav(tmp_path / "double.wav", (0.3 * np.sin(2 * np.pi * 440 * t2)).astype(np.float32), 2 * rate)
    native, double = (pooled_embeddings(embedder, [tmp_path / n]) for n in ("native.wav", "double.wav"))
    assert float(native[0] @ double[0]) > 0.99


class _FirstSamplesClassifier:
    """Logits = the first 3 samples: lets clip_logits be checked without a model."""

    sample_rate = 8000

    def class_logits(self, audio: np.ndarray) -> np.ndarray:
        return audio[:3]


def test_clip_logits_are_keyed_by_stem(tmp_path):
    write_wav(tmp_path / "x.wav", np.array([0.5, -0.25, 0.125, 0.0] * 250, dtype=np.float32), 8000)
    logits = clip_logits(_FirstSamplesClassifier(), [tmp_path / "x.wav"])
    assert list(logits) == ["x"]
    np.testing.assert_allclose(logits["x"], [0.5, -0.25, 0.125], atol=1e-4)


@pytest.fixture(scope="module")
def panns_sed_checkpoint(tmp_path_factory):
    """A random Cnn14_DecisionLevelMax with a made-up AudioSet label table next to it, as panns_inference lays them out."""
    module("panns_inference")
    folder = tmp_path_factory.mktemp("panns_sed")
    torch.manual_seed(0)
    torch.save({"model": _panns_models().Cnn14_DecisionLevelMax(**PANNS_SED_32K).state_dict()}, folder / "sed.pth")
    rows = ["index,mid,display_name"] + [f"{i},/m/{i},Class {i}" for i in range(527)]
    (folder / AUDIOSET_LABELS).write_text("\n".join(rows) + "\n")
    return folder / "sed.pth"


def test_panns_detector_activity_is_the_filtered_thresholded_framewise_output(panns_sed_checkpoint):
    detector = PannsDetector(panns_sed_checkpoint, threshold=0.5, median_frames=5)
    audio = _clip(1.0, detector.sample_rate)
    probabilities = detector.frame_probabilities(audio)
    assert probabilities.shape == (1 + len(audio) // 320, 527) and detector.frame_seconds == 0.01
    assert detector.classes[:2] == ["Class 0", "Class 1"]
    padded = np.pad(probabilities, ((2, 2), (0, 0)), mode="edge")  # an independent running median
    medians = np.median(np.lib.stride_tricks.sliding_window_view(padded, 5, axis=0), axis=-1)
    np.testing.assert_array_equal(detector.activity(audio), medians > 0.5)


def test_panns_detector_needs_the_label_table(panns_sed_checkpoint, tmp_path):
    alone = tmp_path / "sed.pth"
    alone.write_bytes(panns_sed_checkpoint.read_bytes())
    with pytest.raises(DataError, match=f"{AUDIOSET_LABELS}: AudioSet's label table not found"):
        PannsDetector(alone)
    (tmp_path / AUDIOSET_LABELS).write_text("index,mid,display_name\n0,/m/0,Speech\n")
    with pytest.raises(DataError, match="expected 527 rows"):
        PannsDetector(alone)


def test_order_script_runs_on_the_panns_detector(panns_sed_checkpoint, tmp_path, capsys):
    from tclap_eval.order import main

    (tmp_path / "clips").mkdir()
    write_wav(tmp_path / "clips" / "p0.wav", _clip(1.0), 16000)
    (tmp_path / "prompts.jsonl").write_text(json.dumps({"id": "p0", "events": ["Class 3", "Class 7"]}) + "\n")
    main([str(tmp_path / "clips"), "--prompts", str(tmp_path / "prompts.jsonl"),
          "--detector", f"panns-sed:{panns_sed_checkpoint}", "--csv", str(tmp_path / "clips.csv")])
    assert json.loads(capsys.readouterr().out)["clips"] == 1
    assert (tmp_path / "clips.csv").read_text().startswith("id,")


@pytest.mark.parametrize("spec, gives, able", [("clap:/nowhere", "class_logits", "panns, detector"),
                                               ("panns-sed:/nowhere", "frame_embeddings", "vggish, panns, clap, detector"),
                                               ("vggish:/nowhere", "activity", "panns-sed, detector")])
def test_a_scorer_without_the_needed_output_is_refused_before_loading(spec, gives, able):
    with pytest.raises(DataError, match=f"gives no {gives}; use one of {able}$"):
        load_scorer(spec, gives)


def test_audio_files_expect_tclap_generates_listing_and_count_other_files(tmp_path):
    import warnings

    write_wav(tmp_path / "a.wav", _clip(1.0), 16000)
    (tmp_path / "prompts.jsonl").write_text("{}\n")  # what tclap generate writes next to its clips
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert audio_files(tmp_path) == [tmp_path / "a.wav"]
    (tmp_path / "notes.txt").write_text("x")
    with pytest.warns(UserWarning, match="skipped 1 non-audio file"):
        assert audio_files(tmp_path) == [tmp_path / "a.wav"]
