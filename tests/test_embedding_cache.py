"""The embedding cache: batched, computed once per model and file/caption, invalidated by changes."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from torch import nn

from tclap.audio import write_wav
from tclap.embedding_cache import Embedder, model_key
from tclap.errors import DataError

RATE, WINDOW = 1000, 100


class CountingEncoder(nn.Module):
    """A ClapEncoder stand-in: audio -> (mean, first sample) of the window, text -> (length, 1); counts items."""

    sample_rate, window = RATE, WINDOW

    def __init__(self):
        super().__init__()
        self.unused = nn.Linear(1, 1)  # gives the module a device
        self.audio_items, self.text_items, self.audio_calls = 0, 0, 0

    def audio_embeds(self, waveform):
        assert not self.training and waveform.shape[1] == WINDOW
        self.audio_items += len(waveform)
        self.audio_calls += 1
        return torch.stack([waveform.mean(1), waveform[:, 0]], dim=1)

    def tokenize(self, texts):
        return {"input_ids": torch.tensor([[len(t)] for t in texts]), "attention_mask": torch.ones(len(texts), 1)}

    def text_embeds(self, input_ids, attention_mask):
        self.text_items += len(input_ids)
        return torch.cat([input_ids.float(), attention_mask], dim=1)


@pytest.fixture
def files(tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.safetensors").write_bytes(b"weights")
    paths = []
    for k in range(5):
        path = tmp_path / f"{k}.wav"
        write_wav(path, np.full(150, 0.1 * (k + 1), dtype=np.float32), RATE)
        paths.append(path)
    return model_dir, paths, tmp_path / "cache"


def test_audio_is_cropped_from_the_start_to_the_window(tmp_path):
    path = tmp_path / "x.wav"
    write_wav(path, np.concatenate([np.full(WINDOW, 0.5), np.full(WINDOW, -0.5)]).astype(np.float32), RATE)
    embedding = Embedder(CountingEncoder()).audio([path])
    assert embedding[0].tolist() == pytest.approx([0.5, 0.5], abs=1e-4)  # 16-bit PCM


def test_a_second_evaluation_of_the_same_model_and_files_computes_nothing(files):
    model_dir, paths, cache = files
    first = CountingEncoder()
    embedder = Embedder(first, model_dir, cache, batch_size=2)
    audio = embedder.audio(paths + paths[:2])        # duplicates are embedded once
    text = embedder.text(["a dog", "rain", "a dog"])
    assert (first.audio_items, first.audio_calls, first.text_items) == (5, 3, 2)
    assert audio.shape == (7, 2) and torch.equal(audio[5], audio[0])
    assert text.tolist() == [[5, 1], [4, 1], [5, 1]]
    assert sorted(p.name for p in (cache / model_key(model_dir)).iterdir()) == ["audio.pt", "text.pt"]

    second = CountingEncoder()
    again = Embedder(second, model_dir, cache, batch_size=2)
    assert torch.equal(again.audio(paths + paths[:2]), audio)
    assert torch.equal(again.text(["a dog", "rain", "a dog"]), text)
    assert (second.audio_items, second.text_items) == (0, 0)
    again.text(["wind"])
    assert second.text_items == 1


def test_a_changed_audio_file_is_embedded_again(files):
    model_dir, paths, cache = files
    Embedder(CountingEncoder(), model_dir, cache).audio(paths)
    write_wav(paths[3], np.full(150, -0.3, dtype=np.float32), RATE)
    os.utime(paths[3], ns=(1, 1))  # a distinct mtime even on coarse-clock file systems
    encoder = CountingEncoder()
    audio = Embedder(encoder, model_dir, cache).audio(paths)
    assert encoder.audio_items == 1 and audio[3].tolist() == pytest.approx([-0.3, -0.3], abs=1e-4)


def test_a_changed_checkpoint_starts_a_fresh_cache(files):
    model_dir, paths, cache = files
    Embedder(CountingEncoder(), model_dir, cache).audio(paths)
    key = model_key(model_dir)
    (model_dir / "model.safetensors").write_bytes(b"retrained weights")
    assert model_key(model_dir) != key
    encoder = CountingEncoder()
    Embedder(encoder, model_dir, cache).audio(paths)
    assert encoder.audio_items == 5


def test_without_a_cache_folder_embeddings_live_in_memory_only(files):
    model_dir, paths, cache = files
    encoder = CountingEncoder()
    embedder = Embedder(encoder)
    embedder.audio(paths)
    embedder.audio(paths[:3])
    assert encoder.audio_items == 5 and not cache.exists()
    Embedder(encoder).audio(paths)
    assert encoder.audio_items == 10


def test_missing_audio_is_a_data_error_and_training_mode_is_restored(files):
    model_dir, paths, cache = files
    encoder = CountingEncoder().train()
    embedder = Embedder(encoder, model_dir, cache)
    with pytest.raises(DataError, match="nope.wav: audio file not found"):
        embedder.audio([paths[0].with_name("nope.wav")])
    embedder.audio(paths[:1])
    assert encoder.training and encoder.audio_items == 1


def test_each_module_gets_its_own_mode_back(files):
    """A wrapper in train mode around a model loaded in eval mode (ClapEncoder around from_pretrained):
    embedding must not switch the model to train mode, or a validation changes the rest of a run."""
    model_dir, paths, cache = files
    encoder = CountingEncoder().train()
    encoder.unused.eval()
    Embedder(encoder, model_dir, cache).audio(paths[:2])
    assert encoder.training and not encoder.unused.training


def test_an_unreadable_file_keeps_what_was_embedded_before_it(files):
    model_dir, paths, cache = files
    broken = paths[0].with_name("broken.wav")
    broken.write_bytes(b"not audio")
    encoder = CountingEncoder().train()
    with pytest.raises(DataError, match="broken.wav: cannot decode"):
        Embedder(encoder, model_dir, cache, batch_size=2).audio(paths[:2] + [broken])
    assert encoder.training
    again = CountingEncoder()
    Embedder(again, model_dir, cache).audio(paths[:2])
    assert again.audio_items == 0
