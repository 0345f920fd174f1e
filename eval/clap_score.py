"""CLAP score: how well generated clips match their prompts, by a CLAP that is not the one under test.

Per clip, the cosine between the prompt's text embedding and the clip's audio embedding; reported as
the mean over clips. The judging CLAP must differ from the conditioning encoder of the model being
scored, or the score rewards the generator for pleasing its own encoder.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from tclap.errors import DataError


def clap_scores(embedder, audio_paths: Sequence[str | Path], prompts: Sequence[str]) -> torch.Tensor:
    """Per-clip cosine between prompt i and clip i.

    Args:
        embedder: has `.audio(paths)` and `.text(captions)` giving (N, D) embeddings
            (`tclap.embedding_cache.Embedder` around the judging CLAP).
        audio_paths: generated clips.
        prompts: the prompt each clip was generated from, in the same order.
    """
    if len(audio_paths) != len(prompts) or not prompts:
        raise DataError(f"CLAP score: {len(audio_paths)} clips for {len(prompts)} prompts; "
                        "need the same non-zero number")
    audio = F.normalize(embedder.audio(list(audio_paths)), dim=-1)
    text = F.normalize(embedder.text(list(prompts)), dim=-1)
    return (audio * text).sum(-1)


def check_judge(judge_dir: str | Path, conditioning_dirs: Sequence[str | Path]) -> None:
    """Refuse a judging CLAP that is one of the conditioning encoders under test.

    Args:
        judge_dir: the CLAP that scores.
        conditioning_dirs: the encoders the generators were conditioned on.
    """
    judge = Path(judge_dir).resolve()
    if any(judge == Path(d).resolve() for d in conditioning_dirs):
        raise DataError(f"{judge_dir}: the CLAP score's judge is also a conditioning encoder under test; "
                        "use another CLAP")
