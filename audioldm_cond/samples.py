"""Generated clips as files a person can listen to and look at: WAV plus a log-mel PNG per prompt.

Training writes a few fixed prompts at every validation (`samples/step-N/`), so the progress of a
run, and whether the events come in the order the prompt says, can be heard and seen.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the headless backend
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402

from audioldm_cond.mel import AudioLdmMel, MelConfig  # noqa: E402


def sample_name(index: int, prompt: str) -> str:
    """`03-a-dog-barks-then-a-bell` style file stem: ordered, readable, filesystem-safe."""
    slug = re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")[:40].rstrip("-")
    return f"{index:02d}-{slug or 'empty'}"


def spectrogram_figure(audio: np.ndarray, sample_rate: int, title: str,
                       events: list[tuple[str, float, float]] = ()) -> plt.Figure:
    """The clip's log-mel (the model's own front end) as a figure, with labelled event spans drawn on it.

    Args:
        audio: (L,) float waveform.
        sample_rate: its rate.
        title: shown above the image.
        events: (name, start second, end second) spans, e.g. from an event detector.
    """
    mel = AudioLdmMel(MelConfig(sample_rate=sample_rate, f_max=sample_rate / 2))
    log_mel = mel(torch.from_numpy(np.asarray(audio, dtype=np.float32))[None])[0].numpy()  # (T, n_mels)
    figure, ax = plt.subplots(figsize=(6, 2.5))
    seconds = len(audio) / sample_rate
    ax.imshow(log_mel.T, origin="lower", aspect="auto", extent=(0, seconds, 0, log_mel.shape[1]), cmap="magma")
    for row, (name, start, end) in enumerate(events):
        height = log_mel.shape[1] * (0.92 - 0.12 * (row % 4))
        ax.axvline(start, color="white", linewidth=1)
        ax.plot([start, end], [height, height], color="white", linewidth=2)
        ax.text(start, height + 1, f" {name} {start:.1f}s", color="white", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("seconds")
    ax.set_ylabel("mel bin")
    figure.tight_layout()
    return figure


def save_samples(waveforms: np.ndarray, prompts: list[str], sample_rate: int, out_dir: str | Path) -> list[Path]:
    """Write `<name>.wav` and `<name>.png` per prompt, and `prompts.json`; returns the WAV paths.

    Args:
        waveforms: (len(prompts), L) float audio.
        prompts: the captions they were generated from.
        sample_rate: their rate.
        out_dir: folder to write (created).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, (prompt, audio) in enumerate(zip(prompts, waveforms)):
        stem = out_dir / sample_name(index, prompt)
        sf.write(stem.with_suffix(".wav"), audio, sample_rate)
        figure = spectrogram_figure(audio, sample_rate, prompt)
        figure.savefig(stem.with_suffix(".png"), dpi=80)
        plt.close(figure)
        paths.append(stem.with_suffix(".wav"))
    (out_dir / "prompts.json").write_text(json.dumps({p.name: t for p, t in zip(paths, prompts)}, indent=2))
    return paths
