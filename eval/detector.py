"""An offline frame-level sound-event detector, trained on a single-event library.

Order accuracy needs to know when each event sounds in a generated clip. For real data that is a
pretrained tagger's job; for the offline world we train our own: a small MLP over a few stacked
log-mel frames, one sigmoid per class. Labels come for free from the library, because each file
holds one event over quiet background: the event spans from the first to the last frame whose
energy is ACTIVE_DB above the file's background floor (a low percentile of frame energy), and every
other frame is background. Training draws a random gain per frame (so levels do not matter) and
adds digitally silent frames (mixed-up and generated clips have them; library files do not).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import librosa
import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import median_filter
from scipy.special import expit
from torch import Tensor, nn

from tclap.audio import load_audio
from tclap.data.library import read_library
from tclap.errors import DataError

POWER_FLOOR = 1e-10  # -100 dB: the log-mel of digital silence
BACKGROUND_PERCENTILE = 20.0  # frame energy this low in a library file is background
ACTIVE_DB = 10.0  # frames this far above the background floor are the event


@dataclass
class DetectorConfig:
    """Front end, model size and training settings of the detector.

    Args:
        sample_rate: audio is resampled to this before the front end.
        n_fft, hop_length, n_mels: the log-mel front end (frames are hop_length / sample_rate apart).
        context: frames stacked on each side of the frame being classified.
        hidden: width of the MLP's hidden layer.
        steps, batch_size, lr: Adam training on random frame batches.
        gain_db: range of the random gain applied to each training frame.
        silence_fraction: silent frames added to the training set, as a share of its size.
        threshold: probability above which a class is active in `activity`.
        median_frames: median filter length over time applied before thresholding (odd).
        seed: seed of initialisation and batch sampling.
    """

    sample_rate: int = 16000
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 64
    context: int = 4
    hidden: int = 128
    steps: int = 1500
    batch_size: int = 256
    lr: float = 3e-3
    gain_db: tuple[float, float] = (-20.0, 10.0)
    silence_fraction: float = 0.1
    threshold: float = 0.5
    median_frames: int = 5
    seed: int = 0


def active_frames(probabilities: np.ndarray, median_frames: int, threshold: float) -> np.ndarray:
    """(T, C) frame probabilities -> (T, C) booleans: median-filtered over time, then thresholded."""
    return median_filter(probabilities, size=(median_frames, 1), mode="nearest") > threshold


def log_mel_frames(audio: np.ndarray, cfg: DetectorConfig) -> np.ndarray:
    """(T, n_mels) log-mel power in dB, floored at -100 dB; frame t is centred on t * hop_length."""
    mel = librosa.feature.melspectrogram(y=audio.astype(np.float32), sr=cfg.sample_rate, n_fft=cfg.n_fft,
                                         hop_length=cfg.hop_length, n_mels=cfg.n_mels, power=2.0)
    return (10.0 * np.log10(np.maximum(mel, POWER_FLOOR))).T.astype(np.float32)


def context_windows(frames: Tensor, context: int) -> Tensor:
    """(T, M) -> (T, 2 context + 1, M): each frame with its neighbours, edge frames repeated."""
    padded = torch.cat([frames[:1].expand(context, -1), frames, frames[-1:].expand(context, -1)])
    return padded.unfold(0, 2 * context + 1, 1).transpose(1, 2)


def event_extent(audio: np.ndarray, cfg: DetectorConfig, name: str = "audio") -> tuple[int, int]:
    """First and last frame (inclusive) of the single event in a library file.

    Args:
        audio: mono samples at cfg.sample_rate.
        cfg: front-end settings (frames as in `log_mel_frames`).
        name: the file, for error messages.
    """
    power = librosa.feature.rms(y=audio, frame_length=cfg.n_fft, hop_length=cfg.hop_length)[0] ** 2
    energy_db = 10.0 * np.log10(np.maximum(power, POWER_FLOOR))
    active = np.flatnonzero(energy_db > np.percentile(energy_db, BACKGROUND_PERCENTILE) + ACTIVE_DB)
    if active.size == 0:
        raise DataError(f"{name}: no frame is {ACTIVE_DB} dB above the background; not a single-event file")
    return int(active[0]), int(active[-1])


class EventDetector(nn.Module):
    """Frame-level multi-label event detector: audio -> (T, n_classes) probabilities.

    Also offers `class_logits` (the frame logits' maximum over time), so it can stand in for PANNs
    as the offline classifier behind a KL-like score, and `frame_embeddings` (its hidden layer), so
    it can stand in for VGGish behind an FAD-like score.

    Args:
        classes: class names, in output order.
        cfg: front end and model settings.
        mean, std: (n_mels,) feature normalisation, from the training frames.
    """

    def __init__(self, classes: list[str], cfg: DetectorConfig, mean: Tensor, std: Tensor):
        super().__init__()
        self.classes, self.cfg = list(classes), cfg
        self.register_buffer("mean", mean.float())
        self.register_buffer("std", std.float())
        width = (2 * cfg.context + 1) * cfg.n_mels
        self.net = nn.Sequential(nn.Linear(width, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, len(classes)))

    @property
    def sample_rate(self) -> int:
        return self.cfg.sample_rate

    @property
    def frame_seconds(self) -> float:
        return self.cfg.hop_length / self.cfg.sample_rate

    def forward(self, log_mel: Tensor) -> Tensor:
        """(T, n_mels) log-mel dB -> (T, n_classes) logits."""
        return self.classify(context_windows(log_mel, self.cfg.context))

    def classify(self, windows: Tensor) -> Tensor:
        """(N, 2 context + 1, n_mels) log-mel dB windows -> (N, n_classes) logits of their centres."""
        return self.net(((windows - self.mean) / self.std).flatten(1))

    @torch.no_grad()
    def frame_logits(self, audio: np.ndarray) -> np.ndarray:
        """(T, n_classes) logits of mono audio at `sample_rate`."""
        return self(torch.from_numpy(log_mel_frames(audio, self.cfg))).numpy()

    def frame_probabilities(self, audio: np.ndarray) -> np.ndarray:
        """(T, n_classes) probabilities that each class sounds in each frame."""
        return expit(self.frame_logits(audio))

    def activity(self, audio: np.ndarray) -> np.ndarray:
        """(T, n_classes) booleans: which classes sound in which frames."""
        return active_frames(self.frame_probabilities(audio), self.cfg.median_frames, self.cfg.threshold)

    @torch.no_grad()
    def frame_embeddings(self, audio: np.ndarray) -> np.ndarray:
        """(T, hidden) activations of the hidden layer: the offline stand-in for VGGish frames in FAD."""
        windows = context_windows(torch.from_numpy(log_mel_frames(audio, self.cfg)), self.cfg.context)
        return self.net[:2](((windows - self.mean) / self.std).flatten(1)).numpy()

    def class_logits(self, audio: np.ndarray) -> np.ndarray:
        """(n_classes,) clip-level logits: each class's strongest frame."""
        return self.frame_logits(audio).max(axis=0)

    def save(self, path: str | Path) -> Path:
        """Write classes, settings and weights to one file."""
        path = Path(path)
        torch.save({"classes": self.classes, "config": asdict(self.cfg), "state_dict": self.state_dict()}, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> EventDetector:
        """Read a detector written by `save`.

        Args:
            path: the file.
        """
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: detector file not found")
        saved = torch.load(path, map_location="cpu", weights_only=True)
        cfg = DetectorConfig(**{**saved["config"], "gain_db": tuple(saved["config"]["gain_db"])})
        state = saved["state_dict"]
        detector = cls(saved["classes"], cfg, state["mean"], state["std"])
        detector.load_state_dict(state)
        return detector.eval()


def _training_windows(library_dir: str | Path, folds: list[int] | None,
                      cfg: DetectorConfig) -> tuple[list[str], Tensor, Tensor]:
    """Context windows (N, 2c + 1, n_mels) of every frame of the library's files, and (N, C) labels."""
    library = read_library(library_dir)
    files = library.in_folds(folds) if folds is not None else list(library.files)
    if not files:
        raise DataError(f"{library_dir}: no library files in folds {folds}")
    classes = library.categories
    windows, labels = [], []
    for file in files:
        audio = load_audio(file.path, cfg.sample_rate)
        log_mel = torch.from_numpy(log_mel_frames(audio, cfg))
        first, last = event_extent(audio, cfg, str(file.path))
        target = torch.zeros(len(log_mel), len(classes))
        target[first:last + 1, classes.index(file.category)] = 1.0
        windows.append(context_windows(log_mel, cfg.context))  # per file: context never crosses files
        labels.append(target)
    return classes, torch.cat(windows), torch.cat(labels)


def fit_detector(library_dir: str | Path, folds: list[int] | None = None,
                 cfg: DetectorConfig | None = None) -> EventDetector:
    """Train a detector on a single-event library in ESC-50 layout (e.g. `tclap synth-world` output).

    Each training example is one frame with its context at a random gain; a share of examples are
    digital silence, labelled background.

    Args:
        library_dir: library root (audio/ + meta/esc50.csv), one event per file.
        folds: folds to train on (None: all).
        cfg: settings (default DetectorConfig()).
    """
    cfg = cfg or DetectorConfig()
    classes, windows, labels = _training_windows(library_dir, folds, cfg)
    generator = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    frames = windows[:, cfg.context]
    detector = EventDetector(classes, cfg, frames.mean(dim=0), frames.std(dim=0).clamp_min(1e-3))
    silence_db = 10.0 * float(np.log10(POWER_FLOOR))
    optimizer = torch.optim.Adam(detector.parameters(), lr=cfg.lr)
    detector.train()
    for _ in range(cfg.steps):
        index = torch.randint(len(windows), (cfg.batch_size,), generator=generator)
        gain = torch.empty(cfg.batch_size, 1, 1).uniform_(*cfg.gain_db, generator=generator)
        batch = torch.clamp(windows[index] + gain, min=silence_db)
        target = labels[index].clone()
        silent = torch.rand(cfg.batch_size, generator=generator) < cfg.silence_fraction
        batch[silent], target[silent] = silence_db, 0.0
        loss = F.binary_cross_entropy_with_logits(detector.classify(batch), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return detector.eval()


def file_accuracy(detector: EventDetector, library_dir: str | Path, folds: list[int]) -> float:
    """Share of the library's files in `folds` whose strongest class (max over frames) is their category.

    Args:
        detector: a fitted detector.
        library_dir: library root in ESC-50 layout.
        folds: the held-out folds to score.
    """
    files = read_library(library_dir).in_folds(folds)
    if not files:
        raise DataError(f"{library_dir}: no library files in folds {folds}")
    hits = [detector.classes[int(np.argmax(detector.class_logits(load_audio(f.path, detector.sample_rate))))]
            == f.category for f in files]
    return float(np.mean(hits))


def main(argv: list[str] | None = None) -> None:
    """`python eval/detector.py --library DIR --train-folds 1 2 3 4 --test-folds 5 --out detector.pt`."""
    parser = argparse.ArgumentParser(description="Train the offline event detector and report held-out accuracy.")
    parser.add_argument("--library", required=True, type=Path, help="single-event library in ESC-50 layout")
    parser.add_argument("--train-folds", type=int, nargs="+", required=True)
    parser.add_argument("--test-folds", type=int, nargs="+", required=True)
    parser.add_argument("--out", required=True, type=Path, help="detector file to write")
    args = parser.parse_args(argv)
    if set(args.train_folds) & set(args.test_folds):
        parser.error("--train-folds and --test-folds overlap")
    detector = fit_detector(args.library, args.train_folds)
    detector.save(args.out)
    report = {"held_out_file_accuracy": file_accuracy(detector, args.library, args.test_folds),
              "train_folds": args.train_folds, "test_folds": args.test_folds, "detector": str(args.out)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
