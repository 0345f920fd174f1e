"""CLAP's log-mel front end in torch: batched, on the training device.

`transformers.ClapFeatureExtractor` computes the HTSAT input features in numpy, one clip at a time, on
the CPU; at training batch sizes that starves the GPU. `ClapLogMel` computes the same features for a
batch of equal-length clips with `torch.stft`, wherever its buffers live.

It covers the extractor's path for clips no longer than the model window (our loaders crop or
repeat-pad every clip to the window first):

    pad (repeatpad / repeat / pad) -> |STFT|^2 (periodic Hann, centred, reflect-padded)
    -> mel (htk filters for "fusion", slaney filters for "rand_trunc") -> 10 * log10(max(mel, 1e-10))

Two deliberate differences from the extractor:
- `is_longer` is all False. In "fusion" mode the extractor flags one random clip of a batch as longer
  when none is, which sends that clip through HTSAT's fusion branch with four identical mels.
- Longer clips raise instead of being randomly cropped / fused: crop them in the data loader.
The extractor stores `top_db` but never applies it, so neither does this module.
"""
from __future__ import annotations

import torch
from transformers import ClapFeatureExtractor
from transformers.audio_utils import mel_filter_bank

from tclap.errors import DataError

TRUNCATIONS = ("rand_trunc", "fusion")
PADDINGS = ("repeatpad", "repeat", "pad")
FUSION_CHANNELS = 4  # the extractor stacks the mel 4 times in "fusion" mode
POWER_FLOOR = 1e-10  # `spectrogram(log_mel="dB")` clamps the mel power here (-100 dB) before the log


class ClapLogMel(torch.nn.Module):
    """`ClapFeatureExtractor(...)(clips, return_tensors="pt")` for a (B, L) batch, L <= the window."""

    def __init__(self, sampling_rate: int = 48000, feature_size: int = 64, fft_window_size: int = 1024,
                 hop_length: int = 480, max_length_s: int = 10, frequency_min: float = 0.0,
                 frequency_max: float = 14000.0, truncation: str = "rand_trunc", padding: str = "repeatpad"):
        """Build the filters the extractor builds for the same settings.

        Args:
            sampling_rate: audio rate in Hz.
            feature_size: number of mel bands.
            fft_window_size: STFT frame and Hann window length in samples.
            hop_length: STFT hop in samples.
            max_length_s: model window in seconds; shorter clips are padded to it.
            frequency_min: lowest mel filter edge in Hz.
            frequency_max: highest mel filter edge in Hz.
            truncation: "rand_trunc" (slaney filters, 1 channel) or "fusion" (htk filters, 4 channels).
            padding: how shorter clips reach the window: "repeatpad", "repeat" or "pad".
        """
        super().__init__()
        if truncation not in TRUNCATIONS:
            raise ValueError(f"truncation: {truncation!r} is not one of {TRUNCATIONS}")
        if padding not in PADDINGS:
            raise ValueError(f"padding: {padding!r} is not one of {PADDINGS}")
        self.sampling_rate = sampling_rate
        self.fft_window_size = fft_window_size
        self.hop_length = hop_length
        self.max_length = int(max_length_s * sampling_rate)
        self.truncation = truncation
        self.padding = padding
        is_fusion = truncation == "fusion"
        mel_filters = mel_filter_bank(  # float64 (frequency bins, mels), as in the extractor
            num_frequency_bins=fft_window_size // 2 + 1, num_mel_filters=feature_size,
            min_frequency=frequency_min, max_frequency=frequency_max, sampling_rate=sampling_rate,
            norm=None if is_fusion else "slaney", mel_scale="htk" if is_fusion else "slaney")
        # Derived from the settings, so kept out of state_dict.
        self.register_buffer("mel_filters", torch.from_numpy(mel_filters).to(torch.get_default_dtype()),
                             persistent=False)

    @classmethod
    def from_feature_extractor(cls, extractor: ClapFeatureExtractor) -> ClapLogMel:
        """The front end for an extractor's settings (e.g. one loaded with `from_pretrained`).

        Args:
            extractor: the Hugging Face extractor whose features this module must reproduce.
        """
        return cls(sampling_rate=extractor.sampling_rate, feature_size=extractor.feature_size,
                   fft_window_size=extractor.fft_window_size, hop_length=extractor.hop_length,
                   max_length_s=extractor.max_length_s, frequency_min=extractor.frequency_min,
                   frequency_max=extractor.frequency_max, truncation=extractor.truncation,
                   padding=extractor.padding)

    def pad_to_window(self, waveform: torch.Tensor) -> torch.Tensor:
        """Bring (B, L) clips, L <= window, to (B, window) the way the extractor pads one clip.

        Args:
            waveform: (B, L) batch of equal-length clips.
        """
        length = waveform.shape[-1]
        if length == 0:
            raise DataError("waveform: clips are empty")
        if length > self.max_length:
            raise DataError(f"waveform: clips have {length} samples, more than the {self.max_length}-sample "
                            "window; crop them to the window first")
        if length == self.max_length:
            return waveform
        repeats = self.max_length // length
        if self.padding == "repeat":
            return waveform.repeat(1, repeats + 1)[:, :self.max_length]
        if self.padding == "repeatpad":
            waveform = waveform.repeat(1, repeats)
        return torch.nn.functional.pad(waveform, (0, self.max_length - waveform.shape[-1]))

    def forward(self, waveform: torch.Tensor) -> dict[str, torch.Tensor]:
        """Log-mel features with the keys, shapes and (float32 default) dtype of the extractor's output.

        Args:
            waveform: (B, L) float clips at `sampling_rate`, L <= max_length_s * sampling_rate;
                moved to the buffers' device and dtype.

        Returns:
            {"input_features": (B, C, T, n_mels) dB, C = 4 for "fusion" else 1, T = window // hop + 1,
             "is_longer": (B, 1) bool, all False}
        """
        if waveform.dim() != 2:
            raise DataError(f"waveform: expected shape (batch, samples), got {tuple(waveform.shape)}")
        waveform = self.pad_to_window(waveform.to(self.mel_filters))
        # Built per call, not a buffer: a float32 window cast up by `.to(torch.float64)` would keep its
        # float32 round-off, which shows in the far side lobes (~0.4 dB near the -100 dB floor).
        window = torch.hann_window(self.fft_window_size, periodic=True, dtype=torch.float64,
                                   device=waveform.device).to(waveform.dtype)
        stft = torch.stft(waveform, n_fft=self.fft_window_size, hop_length=self.hop_length, window=window,
                          center=True, pad_mode="reflect", onesided=True, return_complex=True)  # (B, F, T)
        power = stft.real.square() + stft.imag.square()
        mel = torch.matmul(self.mel_filters.T, power).transpose(1, 2)  # (B, T, n_mels)
        log_mel = 10.0 * torch.log10(mel.clamp(min=POWER_FLOOR))
        channels = FUSION_CHANNELS if self.truncation == "fusion" else 1
        input_features = log_mel.unsqueeze(1).repeat(1, channels, 1, 1)
        is_longer = torch.zeros(waveform.shape[0], 1, dtype=torch.bool, device=waveform.device)
        return {"input_features": input_features, "is_longer": is_longer}
