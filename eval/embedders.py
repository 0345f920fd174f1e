"""Models that turn audio into what KL and FAD compare: frame embeddings and clip class logits.

The paper's numbers use VGGish (FAD) and PANNs CNN14 at 16 kHz (KL), as audioldm_eval does; both
need weights a user supplies by path and an optional package (`torchvggish`, `panns_inference`),
and nothing here downloads. Without them, `ClapAudioEmbedder` is the OFFLINE STAND-IN: our own
CLAP checkpoint's audio embeddings, one per window, so an FAD-like figure can be computed on the
offline world (it is not FAD and is not comparable with published numbers). The offline stand-in
for PANNs' class logits is `tclap_eval.detector.EventDetector.class_logits`.
"""
from __future__ import annotations

import csv
import importlib
import importlib.util
import sys
import warnings
from collections.abc import Container, Iterable
from pathlib import Path
from types import ModuleType
from typing import Protocol

import numpy as np
import torch

from tclap_eval.detector import EventDetector, active_frames
from tclap.audio import load_audio
from tclap.errors import DataError
from tclap.model import ClapEncoder, load_clap
from tclap.names import LISTING

VGGISH_SAMPLE_RATE = 16000
PANNS_SAMPLE_RATE = 16000
MIN_SECONDS = 0.1  # shorter files are an error, not a score: a few frames say nothing about a clip;
# a model that needs more says so in its own `min_seconds`
# audioldm_eval's CNN14 front end at 16 kHz
PANNS_16K = dict(sample_rate=16000, window_size=512, hop_size=160, mel_bins=64, fmin=50, fmax=8000,
                 classes_num=527)
# PANNs' released sound-event-detection CNN14 (Cnn14_DecisionLevelMax_mAP=0.385.pth) runs at 32 kHz
PANNS_SED_32K = dict(sample_rate=32000, window_size=1024, hop_size=320, mel_bins=64, fmin=50, fmax=14000,
                     classes_num=527)
AUDIOSET_LABELS = "class_labels_indices.csv"  # AudioSet's index,mid,display_name table


class FrameEmbedder(Protocol):
    """Audio at `sample_rate` -> (frames, D) embeddings, pooled over clips for a Fréchet distance."""

    sample_rate: int

    def frame_embeddings(self, audio: np.ndarray) -> np.ndarray: ...


class ClipClassifier(Protocol):
    """Audio at `sample_rate` -> (C,) class logits (before any sigmoid/softmax), for KL."""

    sample_rate: int

    def class_logits(self, audio: np.ndarray) -> np.ndarray: ...


def pooled_embeddings(embedder: FrameEmbedder, paths: Iterable[str | Path]) -> np.ndarray:
    """All frame embeddings of all files, stacked: the set one Gaussian is fitted to in FAD.

    Args:
        embedder: the embedding model.
        paths: audio files, resampled to the embedder's rate on loading.
    """
    frames = [embedder.frame_embeddings(load_audio(p, embedder.sample_rate, min_seconds(embedder))) for p in paths]
    if not frames:
        raise DataError("embeddings: no audio files given")
    return np.concatenate(frames)


def clip_logits(classifier: ClipClassifier, paths: Iterable[str | Path]) -> dict[str, np.ndarray]:
    """File stem -> class logits, the input of `tclap_eval.kl.paired_kl`.

    Args:
        classifier: the classification model.
        paths: audio files, resampled to the classifier's rate on loading.
    """
    rate, shortest = classifier.sample_rate, min_seconds(classifier)
    return {Path(p).stem: classifier.class_logits(load_audio(p, rate, shortest)) for p in paths}


def min_seconds(model) -> float:
    """The shortest file `model` scores: MIN_SECONDS, or the model's own `min_seconds` if longer."""
    return max(MIN_SECONDS, getattr(model, "min_seconds", 0.0))


def _checkpoint(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: {what} not found (give its path; nothing is downloaded)")
    return path


def _missing(package: str, purpose: str) -> DataError:
    return DataError(f"{purpose} needs the optional package {package!r} (pip install {package})")


def _optional_module(name: str, package: str, purpose: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise _missing(package, purpose) from None


def _bare_vggish() -> torch.nn.Module:
    """torchvggish's network without its PCA postprocessor (`VGGish()` fetches the PCA file). The
    GitHub tree (torch.hub) has `vggish.VGG(features)`, the PyPI release `torchvggish.VGG(features, postprocess)`."""
    try:
        network = importlib.import_module("torchvggish.vggish")
        return network.VGG(network.make_layers())
    except ImportError:
        network = _optional_module("torchvggish.torchvggish", "torchvggish", "VGGish (FAD)")
        return network.VGG(network.make_layers(), postprocess=False)


def _panns_models() -> ModuleType:
    """`panns_inference.models` without running the package's `__init__`, whose config module calls
    wget for AudioSet's label CSV on import (offline it leaves an empty ~/panns_data/class_labels_indices.csv)."""
    if "panns_inference" in sys.modules:  # imported by the caller already
        return _optional_module("panns_inference.models", "panns_inference", "PANNs CNN14 (KL)")
    spec = importlib.util.find_spec("panns_inference")
    if spec is None:
        raise _missing("panns_inference", "PANNs CNN14 (KL)")
    package = ModuleType("panns_inference")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["panns_inference"] = package  # a bare parent: importing the submodule skips __init__
    try:
        return importlib.import_module("panns_inference.models")
    finally:
        del sys.modules["panns_inference"]


def _panns_network(name: str, settings: dict, checkpoint: Path) -> torch.nn.Module:
    """panns_inference's network `name` built with `settings`, loaded from a released checkpoint
    (weights under "model"), in eval mode."""
    model = getattr(_panns_models(), name)(**settings)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model.load_state_dict(state.get("model", state))
    return model.eval()


def _panns_min_seconds(settings: dict) -> float:
    """The shortest clip a CNN14 takes: 32 frames survive its five 2x poolings in time."""
    return 31 * settings["hop_size"] / settings["sample_rate"]


class VGGishEmbedder:
    """VGGish frame embeddings (one per 0.96 s), as audioldm_eval's FAD uses them: no PCA, no final ReLU.

    Args:
        checkpoint: torchvggish's VGGish state dict (vggish-10086976.pth).
    """

    sample_rate = VGGISH_SAMPLE_RATE
    min_seconds = (400 + 95 * 160) / VGGISH_SAMPLE_RATE  # one 96-frame example: 25 ms windows, 10 ms hop

    def __init__(self, checkpoint: str | Path):
        path = _checkpoint(checkpoint, "VGGish checkpoint (torchvggish vggish-10086976.pth)")
        self._examples = _optional_module("torchvggish.vggish_input", "torchvggish",
                                          "VGGish (FAD)").waveform_to_examples
        self.model = _bare_vggish()
        self.model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.model.embeddings = self.model.embeddings[:-1]  # audioldm_eval drops the last ReLU
        self.model.eval()

    @torch.no_grad()
    def frame_embeddings(self, audio: np.ndarray) -> np.ndarray:
        examples = torch.as_tensor(self._examples(audio, self.sample_rate), dtype=torch.float32).detach()
        return self.model(examples.reshape(-1, 1, *examples.shape[-2:])).numpy()


class PannsClassifier:
    """PANNs CNN14 (16 kHz): clip logits (its last layer before the sigmoid) for KL, and its 2048-d
    clip embedding as one "frame" for FAD.

    Args:
        checkpoint: a CNN14 16 kHz checkpoint (Cnn14_16k_mAP=0.438.pth, weights under "model").
    """

    sample_rate = PANNS_SAMPLE_RATE
    min_seconds = _panns_min_seconds(PANNS_16K)

    def __init__(self, checkpoint: str | Path):
        path = _checkpoint(checkpoint, "PANNs CNN14 16 kHz checkpoint (Cnn14_16k_mAP=0.438.pth)")
        self.model = _panns_network("Cnn14", PANNS_16K, path)
        self._logits: list[torch.Tensor] = []
        self.model.fc_audioset.register_forward_hook(lambda _m, _i, out: self._logits.append(out))

    @torch.no_grad()
    def class_logits(self, audio: np.ndarray) -> np.ndarray:
        self._logits.clear()
        self.model(torch.as_tensor(audio, dtype=torch.float32)[None])
        return self._logits[-1][0].numpy()

    @torch.no_grad()
    def frame_embeddings(self, audio: np.ndarray) -> np.ndarray:
        return self.model(torch.as_tensor(audio, dtype=torch.float32)[None])["embedding"].numpy()  # (1, 2048)


class PannsDetector:
    """PANNs' sound-event-detection CNN14 (`Cnn14_DecisionLevelMax`, 32 kHz): frame-wise AudioSet class
    activity, the detector behind event-order accuracy on real data (`eval/order.py --detector panns-sed:CKPT`).
    Class names are AudioSet's display names, read from `class_labels_indices.csv` next to the
    checkpoint, where panns_inference keeps both.

    Args:
        checkpoint: Cnn14_DecisionLevelMax_mAP=0.385.pth (weights under "model").
        threshold: frame probability above which a class is active.
        median_frames: median filter length over time (frames of 10 ms) applied before thresholding.
    """

    sample_rate = PANNS_SED_32K["sample_rate"]
    min_seconds = _panns_min_seconds(PANNS_SED_32K)
    frame_seconds = PANNS_SED_32K["hop_size"] / PANNS_SED_32K["sample_rate"]

    def __init__(self, checkpoint: str | Path, threshold: float = 0.5, median_frames: int = 5):
        path = _checkpoint(checkpoint, "PANNs SED checkpoint (Cnn14_DecisionLevelMax_mAP=0.385.pth)")
        self.classes = audioset_labels(path.parent / AUDIOSET_LABELS)
        self.model = _panns_network("Cnn14_DecisionLevelMax", PANNS_SED_32K, path)
        self.threshold, self.median_frames = threshold, median_frames

    @torch.no_grad()
    def frame_probabilities(self, audio: np.ndarray) -> np.ndarray:
        """(T, 527) probabilities, one frame per 10 ms."""
        return self.model(torch.as_tensor(audio, dtype=torch.float32)[None])["framewise_output"][0].numpy()

    def activity(self, audio: np.ndarray) -> np.ndarray:
        """(T, 527) booleans, as the offline detector's `activity`."""
        return active_frames(self.frame_probabilities(audio), self.median_frames, self.threshold)


def audioset_labels(path: Path) -> list[str]:
    """The 527 AudioSet display names, in class-index order."""
    if not path.is_file():
        raise DataError(f"{path}: AudioSet's label table not found (put class_labels_indices.csv next to the "
                        "checkpoint; nothing is downloaded)")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "display_name" not in rows[0] or len(rows) != PANNS_SED_32K["classes_num"]:
        raise DataError(f"{path}: expected {PANNS_SED_32K['classes_num']} rows with a display_name column")
    return [row["display_name"] for row in rows]


class ClapAudioEmbedder:
    """OFFLINE STAND-IN for VGGish: our CLAP checkpoint's audio embedding of each window of a clip.

    A clip is cut into consecutive windows of the CLAP's input length (the last may be shorter;
    the front end repeat-pads it), each giving one unit-norm embedding.

    Args:
        checkpoint_dir: a CLAP `save_pretrained` directory (e.g. from `tclap train`).
    """

    def __init__(self, checkpoint_dir: str | Path):
        model, processor = load_clap(_checkpoint(checkpoint_dir, "CLAP checkpoint directory"))
        self.encoder = ClapEncoder(model, processor).eval()
        self.sample_rate = self.encoder.sample_rate

    @torch.no_grad()
    def frame_embeddings(self, audio: np.ndarray) -> np.ndarray:
        window = self.encoder.window
        chunks = [audio[start:start + window] for start in range(0, len(audio), window)]
        if not chunks:
            raise DataError("CLAP embedding: empty audio")
        return torch.cat([self.encoder.audio_embeds(torch.as_tensor(c, dtype=torch.float32)[None])
                          for c in chunks]).numpy()


AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3"}
SCORERS = {"vggish": VGGishEmbedder, "panns": PannsClassifier, "panns-sed": PannsDetector, "clap": ClapAudioEmbedder,
           "detector": EventDetector}


def load_scorer(spec: str, gives: str):
    """A model from `KIND:PATH`: vggish:CKPT, panns:CKPT, panns-sed:CKPT (frame-wise detector), clap:DIR
    (offline stand-in) or detector:FILE.

    Args:
        spec: e.g. "panns:/ckpt/Cnn14_16k_mAP=0.438.pth" or "detector:results/offline/detector.pt".
        gives: the method the caller needs ("class_logits", "frame_embeddings" or "activity"); a
            kind without it is refused before anything loads.
    """
    kind, sep, path = spec.partition(":")
    if not sep or kind not in SCORERS or not path:
        raise DataError(f"{spec!r}: expected KIND:PATH with KIND one of {', '.join(SCORERS)}")
    model = SCORERS[kind]
    if not hasattr(model, gives):
        able = [k for k, m in SCORERS.items() if hasattr(m, gives)]
        raise DataError(f"{spec!r}: a {kind} model gives no {gives}; use one of {', '.join(able)}")
    return model.load(path) if kind == "detector" else model(path)


def audio_files(folder: str | Path) -> list[Path]:
    """The audio files in a folder, sorted; other files are left out and counted in a warning (all but
    the listing `tclap generate` writes next to its clips, `prompts.jsonl`, which is expected there).

    Clips pair by file stem within one folder, so audio in subfolders is refused rather than
    silently left out (`ref/sub/b.wav` would otherwise never meet `gen/sub/b.wav`).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    nested = sorted(p.relative_to(folder) for p in folder.rglob("*")
                    if p.is_file() and p.parent != folder and p.suffix.lower() in AUDIO_SUFFIXES)
    if nested:
        raise DataError(f"{folder}: holds audio in subfolders ({', '.join(map(str, nested[:3]))}"
                        f"{f' ... ({len(nested)} in all)' if len(nested) > 3 else ''}); clips pair by file name "
                        f"within one folder: pass each subfolder on its own, or flatten them")
    files = sorted(p for p in folder.iterdir() if p.is_file())
    audio = [p for p in files if p.suffix.lower() in AUDIO_SUFFIXES]
    if not audio:
        raise DataError(f"{folder}: no audio files ({', '.join(sorted(AUDIO_SUFFIXES))})")
    others = [p for p in files if p.suffix.lower() not in AUDIO_SUFFIXES and p.name != LISTING]
    if others:
        warnings.warn(f"{folder}: skipped {len(others)} non-audio file(s)", stacklevel=2)
    return audio


def reference_stem(stem: str, references: Container[str]) -> str | None:
    """The reference (or prompt) id a generated clip's file stem belongs to, or None.

    The rule everywhere clips are paired: the stem itself, else `<id>` for `<id>_<k>` (k digits), the
    name `tclap generate --waveforms-per-prompt` gives waveform k of prompt `<id>`. A stem that is both
    (ids `p` and `p_1`) is a DataError rather than a guess.
    """
    base, sep, k = stem.rpartition("_")
    waveform_of = base if sep and k.isdigit() and base in references else None
    if stem in references and waveform_of is not None:
        raise DataError(f"{stem!r} is both an id of its own and waveform {k} of {base!r}; rename one of them")
    return stem if stem in references else waveform_of


def files_by_stem(paths: Iterable[str | Path], what: str) -> dict[str, Path]:
    """File stem -> path, the key that pairs clips with references and prompts; two files with one
    stem (`a.wav`, `a.flac`) are an error rather than one silently replacing the other.

    Args:
        paths: audio paths.
        what: names the file set in the error.
    """
    table: dict[str, Path] = {}
    for path in map(Path, paths):
        if path.stem in table:
            raise DataError(f"{what}: two files share the stem {path.stem!r}: {table[path.stem]}, {path}")
        table[path.stem] = path
    return table
