"""The AudioLDM mel front end in torch: what its VAE encodes and its vocoder inverts.

AudioLDM (`cvssp/audioldm-s-full-v2`) works on 16 kHz audio as a (time, 64-mel) log-magnitude
spectrogram: |STFT| with a 1024-sample periodic Hann window, hop 160, reflect-padded by n_fft / 2,
slaney mel filters over 0-8 kHz, then log(max(mel, 1e-5)). The layout is time x mel, which is how
the pipeline hands latents' decodings to the vocoder.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from audioldm_cond.vocoder import audioldm_mel_filters
from tclap.errors import DataError

LOG_FLOOR = 1e-5  # AudioLDM's dynamic-range compression clamps the mel magnitude here


@dataclass(frozen=True)
class MelConfig:
    sample_rate: int = 16000
    n_fft: int = 1024
    hop_length: int = 160
    n_mels: int = 64
    f_min: float = 0.0
    f_max: float = 8000.0


class AudioLdmMel(torch.nn.Module):
    """(B, L) waveforms -> (B, T, n_mels) log-mel, T = L // hop + 1, on the waveforms' device."""

    def __init__(self, config: MelConfig = MelConfig()):
        super().__init__()
        self.config = config
        filters = audioldm_mel_filters(config.sample_rate, config.n_fft, config.n_mels, config.f_min, config.f_max)
        self.register_buffer("mel_filters", filters, persistent=False)  # (F, n_mels)
        self.register_buffer("window", torch.hann_window(config.n_fft, periodic=True), persistent=False)

    def magnitude(self, waveform: torch.Tensor) -> torch.Tensor:
        """(B, L) -> |STFT| as (B, n_fft // 2 + 1, T)."""
        if waveform.dim() != 2 or waveform.shape[-1] <= self.config.n_fft // 2:
            raise DataError(f"waveform: expected (batch, samples) with more than {self.config.n_fft // 2} "
                            f"samples, got {tuple(waveform.shape)}")
        stft = torch.stft(waveform.to(self.window), n_fft=self.config.n_fft, hop_length=self.config.hop_length,
                          window=self.window, center=True, pad_mode="reflect", return_complex=True)
        return stft.abs()

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        mel = torch.matmul(self.mel_filters.T, self.magnitude(waveform))  # (B, n_mels, T)
        return torch.log(mel.clamp(min=LOG_FLOOR)).transpose(1, 2)
