"""Embeddings of audio files and captions, computed in batches and kept on disk per model.

Evaluating several checkpoints on several test sets, and re-running after a change to the report,
embeds the same files again and again. An `Embedder` remembers every embedding it computed (in
memory, and under `cache_dir` when given) so nothing is computed twice. Keys:

- model: the resolved checkpoint directory and the name, size and mtime of each file in it
  (weights, config, tokenizer, feature-extractor settings), so retraining into the same folder
  starts a fresh cache;
- audio: the resolved file path, its size and mtime (audio is cropped from the start to the model
  window, so the model key covers the rest of what the embedding depends on);
- text: the caption itself.

Layout: `cache_dir/<model dir name>-<hash>/audio.pt` and `text.pt`, each a `torch.save` of
`{"keys": [...], "embeddings": (N, D)}`.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from tclap.audio import fit_length, load_audio
from tclap.errors import DataError
from tclap.model import ClapEncoder


def model_key(model_dir: str | Path) -> str:
    """Folder name of a checkpoint's cache: its dir name plus a hash of its path and files' size/mtime."""
    model_dir = Path(model_dir).resolve()
    files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in model_dir.iterdir() if p.is_file())
    digest = hashlib.sha1(json.dumps([str(model_dir), files]).encode()).hexdigest()[:16]
    return f"{model_dir.name}-{digest}"


def audio_key(path: str | Path) -> str:
    """Cache key of an audio file: resolved path, size and mtime (an edited file is embedded again)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: audio file not found")
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


class _Store:
    """Embeddings of one kind (audio or text) for one model: a dict in memory, one file on disk."""

    def __init__(self, path: Path | None):
        self.path, self.vectors = path, {}
        if path is not None and path.is_file():
            saved = torch.load(path, weights_only=True)
            self.vectors = dict(zip(saved["keys"], saved["embeddings"].unbind(0)))

    def save(self) -> None:
        if self.path is not None and self.vectors:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".part")
            torch.save({"keys": list(self.vectors), "embeddings": torch.stack(list(self.vectors.values()))}, tmp)
            tmp.replace(self.path)


class Embedder:
    """Unit embeddings of audio files and captions for one model, each computed once.

    Args:
        encoder: the model.
        model_dir: its checkpoint directory (names the disk cache; unused without `cache_dir`).
        cache_dir: folder for the disk cache; None keeps embeddings in memory only.
        batch_size: files or captions per forward pass.
    """

    def __init__(self, encoder: ClapEncoder, model_dir: str | Path | None = None,
                 cache_dir: str | Path | None = None, batch_size: int = 32):
        if cache_dir is not None and model_dir is None:
            raise ValueError("a disk cache needs the model's checkpoint directory (model_dir)")
        self.encoder, self.batch_size = encoder, batch_size
        folder = Path(cache_dir) / model_key(model_dir) if cache_dir is not None else None
        self.audio_store = _Store(folder / "audio.pt" if folder else None)
        self.text_store = _Store(folder / "text.pt" if folder else None)
        self.device = next(encoder.parameters()).device

    def audio(self, paths: Sequence[str | Path]) -> Tensor:
        """(N, D) embeddings of audio files (N >= 1), each cropped from its start to the model window."""
        keys = [audio_key(p) for p in paths]
        path_of = dict(zip(keys, paths))
        return self._lookup(self.audio_store, keys, lambda batch: self._embed_audio([path_of[k] for k in batch]))

    def text(self, captions: Sequence[str]) -> Tensor:
        """(N, D) embeddings of captions (N >= 1)."""
        return self._lookup(self.text_store, list(captions), self._embed_text)

    def _lookup(self, store: _Store, keys: list[str], embed: Callable[[list[str]], Tensor]) -> Tensor:
        missing = list(dict.fromkeys(k for k in keys if k not in store.vectors))
        if missing:
            modes = [(module, module.training) for module in self.encoder.modules()]
            self.encoder.eval()
            try:
                for start in range(0, len(missing), self.batch_size):
                    batch = missing[start:start + self.batch_size]
                    store.vectors.update(zip(batch, embed(batch).cpu().unbind(0)))
            finally:  # an unreadable file keeps what was computed before it
                for module, mode in modes:  # each module's own mode: the wrapper's may differ from the model's
                    module.training = mode
                store.save()
        return torch.stack([store.vectors[k] for k in keys])

    @torch.no_grad()
    def _embed_audio(self, paths: list[str | Path]) -> Tensor:
        rate, window = self.encoder.sample_rate, self.encoder.window
        waves = [fit_length(load_audio(p, rate), window, crop="start") for p in paths]  # as AudioWindow(train=False)
        return self.encoder.audio_embeds(torch.from_numpy(np.stack(waves)).to(self.device))

    @torch.no_grad()
    def _embed_text(self, captions: list[str]) -> Tensor:
        tokens = self.encoder.tokenize(captions)
        return self.encoder.text_embeds(tokens["input_ids"].to(self.device), tokens["attention_mask"].to(self.device))
