"""Audio I/O and the small signal operations every data path shares.

Everything here works on mono float32 numpy arrays. Decoding is strict: a file that cannot be used
raises `DataError` naming the file and what is wrong, so callers can either stop or count a skip.
"""
from __future__ import annotations

import os
import warnings
import wave
from pathlib import Path
from typing import BinaryIO

import librosa
import numpy as np
import soundfile as sf

from tclap.errors import DataError

SILENCE_DB = -60.0  # peak level (dBFS) under which a file counts as silent


class TruncatedAudioWarning(DataError, UserWarning):
    """A PCM WAV file holds fewer samples than its header declares (a cut-off copy or download).

    A warning by default; `strict_audio()` (the scripts' `--strict`) turns it into this DataError.
    """


def strict_audio() -> None:
    """From now on, a truncated file is an error (`TruncatedAudioWarning` raised), not a warning."""
    warnings.simplefilter("error", TruncatedAudioWarning)


def _declared_frames(path: Path) -> int | None:
    """Sample frames a PCM WAV header declares (stdlib `wave`); None for other formats."""
    if path.suffix.lower() != ".wav":
        return None
    try:
        with wave.open(str(path), "rb") as handle:
            return handle.getnframes()
    except (wave.Error, EOFError):  # float WAV, WAVE_FORMAT_EXTENSIBLE, ...: libsndfile alone reads those
        return None


def load_audio(path: str | os.PathLike, sample_rate: int, min_seconds: float = 0.0) -> np.ndarray:
    """Decode a file to mono float32 at `sample_rate`, refusing anything unusable.

    Args:
        path: audio file (anything libsndfile reads: wav, flac, ogg, mp3).
        sample_rate: rate of the returned signal; other rates are resampled (soxr).
        min_seconds: files shorter than this raise.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: audio file not found")
    return decode_audio(path, sample_rate, str(path), min_seconds)


def decode_audio(source: str | os.PathLike | BinaryIO, sample_rate: int, name: str,
                 min_seconds: float = 0.0) -> np.ndarray:
    """`load_audio` for a path or an open file (e.g. bytes from a tar shard); `name` goes in errors."""
    try:
        audio, file_rate = sf.read(source, dtype="float32", always_2d=True)  # (n, channels)
    except (sf.LibsndfileError, RuntimeError, TypeError) as error:
        raise DataError(f"{name}: cannot decode audio ({error})") from None
    if audio.shape[0] == 0:
        raise DataError(f"{name}: empty audio (0 samples)")
    declared = _declared_frames(Path(source)) if isinstance(source, (str, os.PathLike)) else None
    if declared is not None and declared != audio.shape[0]:
        warnings.warn(TruncatedAudioWarning(
            f"{name}: the WAV header declares {declared} samples but {audio.shape[0]} were decoded "
            f"(a truncated file?); scored as decoded"), stacklevel=3)
    if not np.isfinite(audio).all():
        raise DataError(f"{name}: audio contains NaN or infinite samples")
    audio = audio.mean(axis=1)  # (n,) stereo and multichannel are downmixed
    if file_rate != sample_rate:
        audio = librosa.resample(audio, orig_sr=file_rate, target_sr=sample_rate)
    if len(audio) < min_seconds * sample_rate:
        raise DataError(f"{name}: too short ({len(audio) / sample_rate:.3f} s < {min_seconds} s)")
    return np.ascontiguousarray(audio, dtype=np.float32)


def peak_db(audio: np.ndarray) -> float:
    """Peak level in dBFS (-inf for digital silence)."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return 20.0 * np.log10(peak) if peak > 0 else -np.inf


def rms_db(audio: np.ndarray) -> float:
    """RMS level in dBFS (-inf for digital silence)."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    return 20.0 * np.log10(rms) if rms > 0 else -np.inf


def trim_silence(audio: np.ndarray, top_db: float = 35.0) -> np.ndarray:
    """The part of `audio` between the first and last frame within `top_db` of its loudest frame."""
    trimmed, _ = librosa.effects.trim(audio, top_db=top_db, frame_length=512, hop_length=128)
    return trimmed


def normalize_rms(audio: np.ndarray, target_db: float) -> np.ndarray:
    """Scale `audio` so its RMS level is `target_db` dBFS (silence is returned unchanged)."""
    level = rms_db(audio)
    if not np.isfinite(level):
        return audio
    return (audio * 10.0 ** ((target_db - level) / 20.0)).astype(np.float32)


def fit_length(audio: np.ndarray, length: int, crop: str = "random",
               rng: np.random.Generator | None = None) -> np.ndarray:
    """Bring `audio` to exactly `length` samples: repeat-pad short clips, crop long ones.

    Repeat-padding (tile, then zero-pad the remainder) is LAION-CLAP's "repeatpad" mode.

    Args:
        audio: mono signal.
        length: target number of samples.
        crop: "random" (training; needs `rng`), "start" or "center" (deterministic evaluation).
        rng: generator for the random crop.
    """
    if crop not in ("random", "start", "center"):
        raise ValueError(f"crop must be 'random', 'start' or 'center', not {crop!r}")
    n = len(audio)
    if n == 0:
        raise DataError("cannot fit an empty signal to a window")
    if n < length:
        repeated = np.tile(audio, length // n)
        return np.pad(repeated, (0, length - len(repeated))).astype(np.float32)
    if crop == "start":
        start = 0
    elif crop == "center":
        start = (n - length) // 2
    else:
        if rng is None:
            raise ValueError("crop='random' needs an rng")
        start = int(rng.integers(0, n - length + 1))
    return audio[start:start + length]


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> None:
    """Write 16-bit PCM atomically, so a killed run never leaves a truncated file behind."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    sf.write(tmp, np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
    os.replace(tmp, path)
