"""Embedders: clear errors on the real (checkpoint) paths, and the offline CLAP stand-in."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from eval.embedders import ClapAudioEmbedder, PannsClassifier, VGGishEmbedder, clip_logits, pooled_embeddings
from tclap.audio import write_wav
from tclap.errors import DataError
from tclap.model import ModelConfig, build_tiny, save_clap


@pytest.mark.parametrize("model", [VGGishEmbedder, PannsClassifier])
def test_missing_checkpoint_names_the_file(model, tmp_path):
    with pytest.raises(DataError, match="missing.pth: .*not found"):
        model(tmp_path / "missing.pth")


@pytest.mark.parametrize("model, package", [(VGGishEmbedder, "torchvggish"), (PannsClassifier, "panns_inference")])
def test_missing_package_is_named(model, package, tmp_path):
    if importlib.util.find_spec(package) is not None:
        pytest.skip(f"{package} is installed")
    checkpoint = tmp_path / "weights.pth"
    checkpoint.write_bytes(b"")
    with pytest.raises(DataError, match=f"optional package '{package}'"):
        model(checkpoint)


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
