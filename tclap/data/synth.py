"""The offline sound world: a synthesised sound-event library in ESC-50 layout.

No machine of ours reaches a dataset host, so the project's default library is made here, from
numpy and scipy alone. Every class has its own spectro-temporal character (tonal or noisy, steady,
modulated or impulsive, low or high band) and every file draws its own pitch, duration, envelope,
modulation, level and background noise, so a model trained on it has to learn the class, not one
waveform. Each file is built from a generator seeded by (seed, class, file), which makes the world
reproducible byte for byte and makes file k of a class independent of how many files are made.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import soundfile as sf
from scipy import signal

from tclap.errors import DataError

MAX_EVENT_SECONDS = 1.5  # no generator returns a longer event
EDGE_SILENCE_SECONDS = 0.1  # the least background-only time before and after the event
MIN_SAMPLE_RATE = 8000
LOUDNESS_FRAME_SECONDS = 0.05  # an event's loudness is the RMS of its loudest frame this long
LOUDEST_EVENT_DB = -4.0  # the loudness of the loudest events, dBFS ...
MAX_EVENT_PEAK = 0.9  # ... unless their peak would pass this first (clicks, knocks)
EVENT_ATTENUATION_DB = (0.0, 20.0)  # each event sits this far below the loudest it may be
EVENT_TO_BACKGROUND_DB = (35.0, 50.0)  # loudness of the event over the background noise RMS
# J. O. Smith's 3-pole/3-zero filter that turns white noise into roughly 1/f ("pink") noise
PINK_FILTER_B = [0.049922035, -0.095993537, 0.050612699, -0.004408786]
PINK_FILTER_A = [1.0, -2.494956002, 2.017265875, -0.522189400]
ESC50_HEADER = ["filename", "fold", "target", "category", "esc10", "src_file", "take"]


# ---------------------------------------------------------------------------------------------
# building blocks


def _num_samples(rng: np.random.Generator, sample_rate: int, low_s: float, high_s: float) -> int:
    return int(rng.uniform(low_s, high_s) * sample_rate)


def _tone(freq_hz: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A sine following an instantaneous frequency per sample, from a random start phase."""
    phase = 2 * np.pi * np.cumsum(freq_hz) / sample_rate
    return np.sin(phase + rng.uniform(0, 2 * np.pi))


def _band_noise(
    rng: np.random.Generator, n: int, sample_rate: int, low_hz: float, high_hz: float
) -> np.ndarray:
    """White noise band-passed to [low_hz, high_hz] (the top is kept below Nyquist)."""
    high_hz = min(high_hz, 0.45 * sample_rate)
    sos = signal.butter(4, [low_hz, high_hz], btype="bandpass", fs=sample_rate, output="sos")
    return signal.sosfilt(sos, rng.standard_normal(n))


def _decay(n: int, sample_rate: int, tau_s: float) -> np.ndarray:
    return np.exp(-np.arange(n) / (tau_s * sample_rate))


def _shape(x: np.ndarray, sample_rate: int, attack_s: float, release_s: float) -> np.ndarray:
    """Raised-cosine attack and release, so every event starts and ends at zero without a click."""
    n = len(x)
    attack = min(int(attack_s * sample_rate), n // 2)
    release = min(int(release_s * sample_rate), n // 2)
    env = np.ones(n)
    env[:attack] = 0.5 - 0.5 * np.cos(np.pi * np.arange(attack) / attack)
    env[n - release :] = 0.5 + 0.5 * np.cos(np.pi * np.arange(1, release + 1) / release)
    return x * env


def _hit_envelope(
    n: int, sample_rate: int, onsets_s: np.ndarray, gains: np.ndarray, tau_s: float
) -> np.ndarray:
    """Sum of exponential decays, one per hit; multiplying a sound by it turns it into hits."""
    t = np.arange(n) / sample_rate
    env = np.zeros(n)
    for onset_s, gain in zip(onsets_s, gains):
        after = t >= onset_s
        env[after] += gain * np.exp(-(t[after] - onset_s) / tau_s)
    return env


def _unit_peak(x: np.ndarray) -> np.ndarray:
    return (x / np.max(np.abs(x))).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# the classes: each returns one event at unit peak, with no surrounding silence


def beep(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Steady mid-band pure tone with an abrupt start and stop."""
    n = _num_samples(rng, sample_rate, 0.3, 1.0)
    x = _tone(np.full(n, rng.uniform(500, 1000)), sample_rate, rng)
    return _unit_peak(_shape(x, sample_rate, rng.uniform(0.003, 0.015), rng.uniform(0.005, 0.02)))


def siren(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Tone whose pitch swings slowly up and down around a centre (frequency modulation)."""
    n = _num_samples(rng, sample_rate, 0.8, 1.5)
    centre, depth, rate = rng.uniform(600, 1100), rng.uniform(0.2, 0.4), rng.uniform(1.5, 4.0)
    t = np.arange(n) / sample_rate
    freq = centre * (1 + depth * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi)))
    x = _tone(freq, sample_rate, rng)
    return _unit_peak(_shape(x, sample_rate, rng.uniform(0.03, 0.1), rng.uniform(0.05, 0.15)))


def knock(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Two to four sparse, short, woody impacts (damped mid-low partials plus a contact click)."""
    hits, gap_s = int(rng.integers(2, 5)), rng.uniform(0.12, 0.25)
    onsets_s = (np.arange(hits) + rng.uniform(-0.1, 0.1, hits)) * gap_s + 0.1 * gap_s
    gains = rng.uniform(0.6, 1.0, hits)
    n = int(((hits - 1) * gap_s + 0.15) * sample_rate)
    freq = rng.uniform(150, 350)
    body = _tone(np.full(n, freq), sample_rate, rng)
    body += 0.5 * _tone(np.full(n, 2.3 * freq), sample_rate, rng)
    click = _band_noise(rng, n, sample_rate, 1000, 4000)
    x = body * _hit_envelope(n, sample_rate, onsets_s, gains, rng.uniform(0.01, 0.025))
    x += 0.5 * click * _hit_envelope(n, sample_rate, onsets_s, gains, 0.002)
    return _unit_peak(_shape(x, sample_rate, 0.001, 0.01))


def bell(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Struck inharmonic partials that ring and decay, the higher ones faster."""
    n = _num_samples(rng, sample_rate, 0.8, 1.5)
    fundamental, tau = rng.uniform(200, 500), rng.uniform(0.25, 0.6)
    x = np.zeros(n)
    for ratio, gain in zip([1.0, 2.0, 2.76, 5.40, 8.93], [1.0, 0.6, 0.5, 0.3, 0.2]):
        freq = fundamental * ratio * rng.uniform(0.98, 1.02)
        if freq < 0.45 * sample_rate:
            partial = _tone(np.full(n, freq), sample_rate, rng)
            x += gain * rng.uniform(0.5, 1.0) * partial * _decay(n, sample_rate, tau / ratio**0.5)
    return _unit_peak(_shape(x, sample_rate, 0.002, 0.05))


def chirp(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A bird-like string of short, high, upward-gliding syllables."""
    syllables = int(rng.integers(3, 9))
    syllable_n = _num_samples(rng, sample_rate, 0.05, 0.1)
    gap_n = _num_samples(rng, sample_rate, 0.02, 0.08)
    start_hz = rng.uniform(2500, 3500)
    end_hz = min(start_hz * rng.uniform(1.3, 1.8), 0.45 * sample_rate)
    parts = []
    for i in range(syllables):
        if i > 0:
            parts.append(np.zeros(gap_n))
        glide = np.linspace(start_hz, end_hz, syllable_n) * rng.uniform(0.95, 1.05)
        syllable = _tone(glide, sample_rate, rng) * np.hanning(syllable_n)
        parts.append(syllable * rng.uniform(0.6, 1.0))
    return _unit_peak(np.concatenate(parts))


def buzz(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Steady low-pitched sawtooth: a harmonic series reaching far up the spectrum."""
    n = _num_samples(rng, sample_rate, 0.4, 1.2)
    fundamental = rng.uniform(100, 250)
    harmonics = int(min(0.45 * sample_rate, 6000) / fundamental)
    t = np.arange(n) / sample_rate
    x = sum(np.sin(2 * np.pi * k * fundamental * t) / k for k in range(1, harmonics + 1))
    return _unit_peak(_shape(x, sample_rate, rng.uniform(0.005, 0.03), rng.uniform(0.01, 0.05)))


def whistle(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """High tone with a vibrato and some breath noise around it."""
    n = _num_samples(rng, sample_rate, 0.4, 1.3)
    centre, depth, rate = rng.uniform(1200, 2400), rng.uniform(0.01, 0.03), rng.uniform(4.0, 7.0)
    t = np.arange(n) / sample_rate
    freq = centre * (1 + depth * np.sin(2 * np.pi * rate * t))
    breath = _band_noise(rng, n, sample_rate, 0.8 * centre, 1.2 * centre)
    x = _tone(freq, sample_rate, rng) + 0.1 * breath / np.std(breath)
    return _unit_peak(_shape(x, sample_rate, rng.uniform(0.04, 0.12), rng.uniform(0.05, 0.15)))


def hum(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Low, soft-edged drone of a few harmonics that swells slowly."""
    n = _num_samples(rng, sample_rate, 0.6, 1.5)
    fundamental = rng.uniform(50, 120)
    x = np.zeros(n)
    for k, gain in zip([1, 2, 3, 4], [1.0, 0.5, 0.3, 0.15]):
        x += gain * rng.uniform(0.5, 1.0) * _tone(np.full(n, k * fundamental), sample_rate, rng)
    t = np.arange(n) / sample_rate
    x *= 1 + rng.uniform(0.1, 0.3) * np.sin(2 * np.pi * rng.uniform(0.5, 2.0) * t)
    return _unit_peak(_shape(x, sample_rate, rng.uniform(0.1, 0.2), rng.uniform(0.1, 0.2)))


def click_train(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A fast regular train of tiny, bright clicks."""
    n = _num_samples(rng, sample_rate, 0.3, 1.2)
    onsets_s = np.arange(0, n / sample_rate - 0.005, 1 / rng.uniform(8, 20))
    gains = rng.uniform(0.7, 1.0, len(onsets_s))
    x = _band_noise(rng, n, sample_rate, 2000, 7000)
    x *= _hit_envelope(n, sample_rate, onsets_s, gains, 0.001)
    return _unit_peak(x)


def noise_burst(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Steady broadband hiss."""
    n = _num_samples(rng, sample_rate, 0.3, 1.2)
    x = _band_noise(rng, n, sample_rate, rng.uniform(200, 800), rng.uniform(5000, 7500))
    return _unit_peak(_shape(x, sample_rate, rng.uniform(0.005, 0.03), rng.uniform(0.02, 0.1)))


def drum_roll(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Many fast snare-like hits (low tone plus mid-band rattle) that swell or fade."""
    roll_s, rate = rng.uniform(0.5, 1.3), rng.uniform(10, 18)
    hits = int(roll_s * rate)
    onsets_s = (np.arange(hits) + 0.1 + rng.uniform(-0.1, 0.1, hits)) / rate
    swell = np.linspace(rng.uniform(0.3, 1.0), rng.uniform(0.3, 1.0), hits)
    gains = swell * rng.uniform(0.8, 1.0, hits)
    n = int((roll_s + 0.12) * sample_rate)
    rattle = _band_noise(rng, n, sample_rate, 300, 3000)
    x = _tone(np.full(n, rng.uniform(150, 250)), sample_rate, rng) + 2 * rattle / np.std(rattle)
    x *= _hit_envelope(n, sample_rate, onsets_s, gains, rng.uniform(0.02, 0.04))
    return _unit_peak(_shape(x, sample_rate, 0.001, 0.01))


def sweep(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """One long tone gliding across a wide range, up or down."""
    n = _num_samples(rng, sample_rate, 0.5, 1.5)
    low_hz, high_hz = rng.uniform(150, 400), min(rng.uniform(3000, 6000), 0.45 * sample_rate)
    freq = np.geomspace(low_hz, high_hz, n)
    if rng.random() < 0.5:
        freq = freq[::-1]
    return _unit_peak(_shape(_tone(freq, sample_rate, rng), sample_rate, 0.02, 0.03))


CLASSES: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "beep": beep,
    "siren": siren,
    "knock": knock,
    "bell": bell,
    "chirp": chirp,
    "buzz": buzz,
    "whistle": whistle,
    "hum": hum,
    "click_train": click_train,
    "noise_burst": noise_burst,
    "drum_roll": drum_roll,
    "sweep": sweep,
}


def _check_classes(names: Sequence[str]) -> None:
    unknown = [name for name in names if name not in CLASSES]
    if unknown:
        raise DataError(f"classes: unknown {unknown}; valid classes are {sorted(CLASSES)}")


def _check_sample_rate(sample_rate: int) -> None:
    if sample_rate < MIN_SAMPLE_RATE:
        raise DataError(f"sample_rate: {sample_rate} Hz is below {MIN_SAMPLE_RATE} Hz")


def synthesize_event(category: str, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Draw one event of a class, so other modules can make sounds without writing files.

    Args:
        category: a key of CLASSES.
        rng: the generator every random choice is drawn from.
        sample_rate: in Hz, at least MIN_SAMPLE_RATE.

    Returns:
        The event alone (no silence around it), mono float32 at unit peak,
        at most MAX_EVENT_SECONDS long.
    """
    _check_classes([category])
    _check_sample_rate(sample_rate)
    return CLASSES[category](rng, sample_rate)


# ---------------------------------------------------------------------------------------------
# placing events into files


def _loudest_frame_rms(x: np.ndarray, frame_n: int) -> float:
    energy = np.concatenate([[0.0], np.cumsum(x**2)])
    return float(np.sqrt(np.max(energy[frame_n:] - energy[:-frame_n]) / frame_n))


def _background(rng: np.random.Generator, n: int) -> np.ndarray:
    """Stationary noise at unit RMS, a random blend of white and pink."""
    white = rng.standard_normal(n)
    pink = signal.lfilter(PINK_FILTER_B, PINK_FILTER_A, rng.standard_normal(n))
    pinkness = rng.uniform(0, 1)
    noise = (1 - pinkness) * white + pinkness * pink / np.std(pink)
    return noise / np.std(noise)


def _render_file(
    category: str, rng: np.random.Generator, sample_rate: int, num_samples: int
) -> np.ndarray:
    """One ESC-50-like clip: quiet background noise with one event at a random onset and level.

    Every class gets the same 20 dB of level range, measured down from the loudest the event may
    be; the background is set relative to the event so the silence around it stays silence.
    """
    event = synthesize_event(category, rng, sample_rate).astype(np.float64)
    loudness = _loudest_frame_rms(event, int(LOUDNESS_FRAME_SECONDS * sample_rate))
    loudest_gain = min(10 ** (LOUDEST_EVENT_DB / 20) / loudness, MAX_EVENT_PEAK)  # event peak is 1
    gain = loudest_gain * 10 ** (-rng.uniform(*EVENT_ATTENUATION_DB) / 20)
    background_rms = gain * loudness * 10 ** (-rng.uniform(*EVENT_TO_BACKGROUND_DB) / 20)
    edge_n = int(EDGE_SILENCE_SECONDS * sample_rate)
    onset = int(rng.integers(edge_n, num_samples - edge_n - len(event) + 1))
    clip = background_rms * _background(rng, num_samples)
    clip[onset : onset + len(event)] += gain * event
    return clip


@dataclass
class SynthConfig:
    """Settings of the synthesised world; defaults are the offline recipe's.

    Args:
        classes: categories to include, in target order; None means all of CLASSES.
        files_per_class: clips per class, at least num_folds.
        sample_rate: in Hz, at least 8000.
        duration: clip length in seconds, long enough for the longest event plus silent edges.
        num_folds: folds 1..num_folds; the clips of each class are spread evenly over them.
        seed: non-negative integer behind every random choice.
    """

    classes: list[str] | None = None
    files_per_class: int = 40
    sample_rate: int = 16000
    duration: float = 2.5
    num_folds: int = 5
    seed: int = 0


def synthesize_world(out_dir: str | Path, cfg: SynthConfig | None = None) -> Path:
    """Write the offline sound library in ESC-50 layout: out_dir/audio/*.wav + out_dir/meta/esc50.csv.

    File k of a class is drawn from np.random.default_rng([seed, class id, k]), where the class id
    is the class's position in CLASSES (not in `classes`), so a sound does not change when the
    class list or the number of files does. The CSV is written last: a world without it is
    unfinished. Rerunning overwrites.

    Args:
        out_dir: folder to write into (created if missing).
        cfg: settings (default: SynthConfig()).

    Returns:
        out_dir as a Path.
    """
    cfg = cfg or SynthConfig()
    classes, files_per_class, sample_rate = cfg.classes, cfg.files_per_class, cfg.sample_rate
    duration, num_folds, seed = cfg.duration, cfg.num_folds, cfg.seed
    names = list(CLASSES) if classes is None else list(classes)
    _check_classes(names)
    if not names or len(set(names)) != len(names):
        raise DataError(f"classes: need at least one class and no repeats, got {names}")
    _check_sample_rate(sample_rate)
    if num_folds < 1:
        raise DataError(f"num_folds: must be at least 1, got {num_folds}")
    if files_per_class < num_folds:
        raise DataError(f"files_per_class: {files_per_class} is fewer than num_folds={num_folds}")
    shortest = MAX_EVENT_SECONDS + 2 * EDGE_SILENCE_SECONDS
    if duration < shortest:
        raise DataError(f"duration: {duration} s is shorter than the {shortest} s an event needs")
    if seed < 0:
        raise DataError(f"seed: must be non-negative, got {seed}")

    out_dir = Path(out_dir)
    (out_dir / "audio").mkdir(parents=True, exist_ok=True)
    (out_dir / "meta").mkdir(parents=True, exist_ok=True)
    num_samples = int(round(duration * sample_rate))
    rows = []
    for target, category in enumerate(names):
        class_id = list(CLASSES).index(category)
        for k in range(files_per_class):
            rng = np.random.default_rng([seed, class_id, k])
            fold, src_file = k % num_folds + 1, f"{class_id + 1}{k:05d}"
            filename = f"{fold}-{src_file}-A-{target}.wav"
            clip = _render_file(category, rng, sample_rate, num_samples)
            sf.write(out_dir / "audio" / filename, clip, sample_rate, subtype="PCM_16")
            rows.append([filename, fold, target, category, False, src_file, "A"])
    with open(out_dir / "meta" / "esc50.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(ESC50_HEADER)
        writer.writerows(rows)
    return out_dir
