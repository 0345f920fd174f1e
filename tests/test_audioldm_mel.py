import librosa
import numpy as np
import pytest
import torch

from audioldm_cond.mel import AudioLdmMel, MelConfig
from tclap.errors import DataError


def librosa_log_mel(wave: np.ndarray, cfg: MelConfig) -> np.ndarray:
    """AudioLDM's recipe written with librosa's own STFT and filters: (T, n_mels)."""
    magnitude = np.abs(librosa.stft(wave, n_fft=cfg.n_fft, hop_length=cfg.hop_length, window="hann",
                                    center=True, pad_mode="reflect"))
    basis = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.f_min,
                                fmax=cfg.f_max)
    return np.log(np.maximum(basis @ magnitude, 1e-5)).T


def test_matches_librosa_on_a_noisy_chirp():
    cfg = MelConfig()
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 2) / 16000
    wave = (0.5 * np.sin(2 * np.pi * (200 + 1500 * t) * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    ours = AudioLdmMel(cfg)(torch.from_numpy(wave)[None])[0].numpy()
    ref = librosa_log_mel(wave, cfg)
    assert ours.shape == ref.shape == (wave.size // 160 + 1, 64)
    assert np.abs(ours - ref).max() < 1e-3


def test_silence_hits_the_log_floor():
    mel = AudioLdmMel()(torch.zeros(2, 4000))
    assert torch.allclose(mel, torch.full_like(mel, np.log(1e-5)))


def test_rejects_unbatched_or_too_short_input():
    with pytest.raises(DataError, match="waveform"):
        AudioLdmMel()(torch.zeros(16000))
    with pytest.raises(DataError, match="waveform"):
        AudioLdmMel()(torch.zeros(1, 100))
