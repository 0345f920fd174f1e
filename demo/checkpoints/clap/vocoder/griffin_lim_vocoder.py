"""A weight-free Griffin-Lim vocoder that drops into AudioLDMPipeline where SpeechT5HifiGan goes.

AudioLDM's HiFi-GAN is a trained network we cannot download offline, and training one is out of
scope. Griffin-Lim needs no weights: it inverts the AudioLDM log-mel (`audioldm_cond.mel`) by
undoing the log, solving the mel filters for a non-negative linear magnitude, and iterating phase
estimates until the STFT is consistent. It sounds phasey, but it is deterministic and faithful in
timing, which is what the offline world needs to hear and measure event order.

The pipeline reads `config.model_in_dim` (mel bins), `config.sampling_rate` and
`config.upsample_rates` (their product is samples per frame), so those are the names used here. As
a diffusers `ModelMixin` it saves with the pipeline (config only: its buffers are derived from the
config).

This file stands alone (torch, diffusers and transformers only): `save_pipeline` copies it into the
pipeline's `vocoder/` folder as `griffin_lim_vocoder.py` and names it in `model_index.json`, the way
diffusers loads community components, so `DiffusionPipeline.from_pretrained(DIR, trust_remote_code=True)`
loads a pipeline folder with nothing of ours installed. The mel filter bank is defined here, and
the AudioLDM front end (`audioldm_cond.mel`) uses the same function.
"""
from __future__ import annotations

import math

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from transformers.audio_utils import mel_filter_bank


def audioldm_mel_filters(sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float) -> torch.Tensor:
    """AudioLDM's mel filter bank, (n_fft // 2 + 1, n_mels): Slaney scale and area normalisation, as
    librosa's `filters.mel` defaults (here through transformers' `mel_filter_bank`)."""
    return torch.from_numpy(mel_filter_bank(num_frequency_bins=n_fft // 2 + 1, num_mel_filters=n_mels,
                                            min_frequency=f_min, max_frequency=f_max, sampling_rate=sample_rate,
                                            norm="slaney", mel_scale="slaney")).float()


NNLS_STEPS = 100  # multiplicative updates after the pseudo-inverse; mel re-fit error ~1% at 100


class GriffinLimVocoder(ModelMixin, ConfigMixin):
    """(B, T, n_mels) AudioLDM log-mel -> (B, T * hop) waveform; (T, n_mels) -> (T * hop,).

    Args:
        model_in_dim: mel bins of the input (AudioLDM: 64).
        sampling_rate: output rate in Hz (AudioLDM: 16000).
        upsample_rates: samples per frame as factors, SpeechT5HifiGan's name for it; hop = product.
        n_fft: STFT size of the mel front end.
        f_min: lowest mel filter edge in Hz.
        f_max: highest mel filter edge in Hz.
        n_iter: Griffin-Lim iterations.
        momentum: fast Griffin-Lim momentum (Perraudin et al. 2013); 0 gives plain Griffin-Lim.
    """

    @register_to_config
    def __init__(self, model_in_dim: int = 64, sampling_rate: int = 16000, upsample_rates: tuple[int, ...] = (160,),
                 n_fft: int = 1024, f_min: float = 0.0, f_max: float = 8000.0, n_iter: int = 32,
                 momentum: float = 0.99):
        super().__init__()
        self.hop_length = math.prod(upsample_rates)
        filters = audioldm_mel_filters(sampling_rate, n_fft, model_in_dim, f_min, f_max)
        self.register_buffer("mel_filters", filters, persistent=False)  # (F, n_mels)
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)
        # Minimum-norm solution of filters.T @ magnitude = mel: the starting point of the NNLS fit.
        self.register_buffer("mel_pinv", torch.linalg.pinv(filters.T), persistent=False)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str, subfolder: str | None = None,
                        **loading_kwargs) -> GriffinLimVocoder:
        """Rebuild from the saved config alone: there are no weights to load.

        `ModelMixin.from_pretrained` would look for a weights file, which `save_pretrained` does not write
        for a model without persistent tensors. dtype / device arguments are ignored: it computes in float32.

        Args:
            pretrained_model_name_or_path: a directory with `config.json` (or a hub id).
            subfolder: where the config sits inside it (the pipeline passes the component folder itself).
            loading_kwargs: what DiffusionPipeline passes to every component; unused.
        """
        return cls.from_config(cls.load_config(pretrained_model_name_or_path, subfolder=subfolder))

    def mel_to_magnitude(self, mel: torch.Tensor) -> torch.Tensor:
        """Linear mel magnitude (B, n_mels, T) -> non-negative |STFT| (B, F, T) whose mel is `mel`.

        The system is underdetermined (F = n_fft / 2 + 1 bins, n_mels equations per frame); the clamped
        pseudo-inverse is refined by Lee-Seung multiplicative updates, which keep it non-negative.

        Args:
            mel: mel magnitudes (exp of the log-mel), float32.
        """
        filters = self.mel_filters.float()  # (F, n_mels)
        magnitude = (self.mel_pinv.float() @ mel).clamp(min=1e-8)
        target = filters @ mel
        for _ in range(NNLS_STEPS):
            magnitude = magnitude * target / (filters @ (filters.T @ magnitude) + 1e-12)
        return magnitude

    def griffin_lim(self, magnitude: torch.Tensor) -> torch.Tensor:
        """|STFT| (B, F, T) -> (B, T * hop) waveform, starting from zero phase (deterministic).

        Args:
            magnitude: target STFT magnitude with the mel front end's settings.
        """
        n_fft, hop, frames = self.config.n_fft, self.hop_length, magnitude.shape[-1]
        window = self.window.float()
        inner_length = (frames - 1) * hop  # a centred STFT of this many samples has exactly `frames` frames

        def stft(waveform: torch.Tensor) -> torch.Tensor:
            return torch.stft(waveform, n_fft=n_fft, hop_length=hop, window=window, center=True,
                              pad_mode="reflect", return_complex=True)

        def istft(spectrum: torch.Tensor, length: int) -> torch.Tensor:
            return torch.istft(spectrum, n_fft=n_fft, hop_length=hop, window=window, center=True, length=length)

        phase = torch.ones_like(magnitude, dtype=torch.complex64)
        previous = torch.zeros_like(phase)
        for _ in range(self.config.n_iter):
            rebuilt = stft(istft(magnitude * phase, inner_length))
            phase = rebuilt - previous * (self.config.momentum / (1 + self.config.momentum))
            phase = phase / (phase.abs() + 1e-16)
            previous = rebuilt
        return istft(magnitude * phase, frames * hop)

    @torch.no_grad()
    def forward(self, spectrogram: torch.Tensor) -> torch.Tensor:
        """AudioLDM log-mel, (B, T, n_mels) or (T, n_mels), any float dtype -> float32 waveform.

        Args:
            spectrogram: natural-log mel magnitudes, time x mel (what the pipeline's VAE decodes).
        """
        batched = spectrogram.dim() == 3
        if not batched:
            spectrogram = spectrogram.unsqueeze(0)
        min_frames = self.config.n_fft // (2 * self.hop_length) + 2  # reflect padding needs n_fft / 2 < samples
        if spectrogram.dim() != 3 or spectrogram.shape[-1] != self.config.model_in_dim \
                or spectrogram.shape[1] < min_frames:
            raise ValueError(f"spectrogram: expected (batch, frames >= {min_frames}, {self.config.model_in_dim}) "
                            f"or (frames, {self.config.model_in_dim}), got {tuple(spectrogram.shape)}")
        mel = spectrogram.float().exp().transpose(1, 2)  # (B, n_mels, T)
        waveform = self.griffin_lim(self.mel_to_magnitude(mel))
        return waveform if batched else waveform[0]
