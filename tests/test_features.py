"""ClapLogMel against its independent reference, transformers' numpy `ClapFeatureExtractor`."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import ClapFeatureExtractor

from tclap.errors import DataError
from tclap.features import ClapLogMel

# Small settings keep the per-clip numpy reference fast: 2 s windows of 201 frames.
SMALL = dict(sampling_rate=16000, max_length_s=2, hop_length=160, fft_window_size=512, feature_size=64,
             frequency_max=8000)

# Tolerances in dB; the features span -100 dB (the 1e-10 power floor) to about +50 dB.
# float64 module: measured max 4.2e-6 dB, which is the reference's own rounding of its output to
# float32 (half an ulp at 100 is 3.8e-6). Bound: about 2x that.
FLOAT64_TOL_DB = 1e-5
# float32 module: float32 STFT round-off is a noise floor far under each frame's energy, so the deeper
# a band sits under the clip's loudest band, the larger its error. Measured max on these clips: 1e-4 dB
# within 60 dB of the loudest, 1.4e-2 dB within 100 dB (a sweep padded from 0.7 s), up to 8 dB deeper
# (a sine's far side-lobe leakage at the -100 dB floor of a 150 dB range: float32 noise, not compared;
# float64 compares every band). Bound: 2e-2 dB within 100 dB of the loudest band.
FLOAT32_TOL_DB = 2e-2
FLOAT32_DEPTH_DB = 100.0


def make_clips(sampling_rate: int, seconds: float) -> dict[str, np.ndarray]:
    """Float32 clips (as our loaders produce): noise, a sweep to near Nyquist, silence + tone + silence."""
    n = int(seconds * sampling_rate)
    t = np.arange(n) / sampling_rate
    start_hz, end_hz = 50.0, 0.45 * sampling_rate
    tone = np.zeros(n)
    tone[n // 3:2 * n // 3] = 0.5 * np.sin(2 * np.pi * 1000.0 * t[n // 3:2 * n // 3])
    clips = {"noise": 0.3 * np.random.default_rng(0).standard_normal(n),
             "sweep": np.sin(2 * np.pi * (start_hz * t + (end_hz - start_hz) / (2 * seconds) * t ** 2)),
             "silence_tone": tone}
    return {name: clip.astype(np.float32) for name, clip in clips.items()}


def reference(extractor: ClapFeatureExtractor, clips: list[np.ndarray]) -> dict[str, torch.Tensor]:
    return extractor(clips, sampling_rate=extractor.sampling_rate, return_tensors="pt")


def ours(extractor: ClapFeatureExtractor, clips: list[np.ndarray], dtype=torch.float32) -> dict[str, torch.Tensor]:
    return ClapLogMel.from_feature_extractor(extractor).to(dtype)(torch.from_numpy(np.stack(clips)))


def assert_matches(expected: torch.Tensor, actual: torch.Tensor, dtype: torch.dtype) -> None:
    """Same shape; within the tolerance of `dtype` (float32: only bands within 100 dB of the loudest)."""
    assert actual.shape == expected.shape and actual.dtype == dtype
    expected, error = expected.double(), (actual.double() - expected.double()).abs()
    if dtype == torch.float64:
        assert error.max().item() <= FLOAT64_TOL_DB
    else:
        loudest = expected.flatten(1).amax(1).view(-1, 1, 1, 1)
        compared = expected >= loudest - FLOAT32_DEPTH_DB
        assert error[compared].max().item() <= FLOAT32_TOL_DB


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("truncation", ["rand_trunc", "fusion"])
def test_full_window_clips_match_the_extractor(truncation, dtype):
    extractor = ClapFeatureExtractor(truncation=truncation, **SMALL)
    clips = list(make_clips(16000, 2).values())
    expected, actual = reference(extractor, clips), ours(extractor, clips, dtype)
    assert_matches(expected["input_features"], actual["input_features"], dtype)
    assert expected["input_features"].shape == (3, 4 if truncation == "fusion" else 1, 201, 64)
    assert actual["is_longer"].shape == expected["is_longer"].shape and actual["is_longer"].dtype == torch.bool
    assert not actual["is_longer"].any()
    if truncation == "rand_trunc":
        assert not expected["is_longer"].any()
    else:  # the extractor flags one random clip as longer; we deliberately do not
        assert expected["is_longer"].sum() == 1


@pytest.mark.parametrize("truncation", ["rand_trunc", "fusion"])
def test_default_48k_10s_settings_match_the_extractor(truncation):
    extractor = ClapFeatureExtractor(truncation=truncation)
    clips = [make_clips(48000, 10)[name] for name in ("noise", "sweep")]
    assert_matches(reference(extractor, clips)["input_features"], ours(extractor, clips)["input_features"],
                   torch.float32)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("padding", ["repeatpad", "repeat", "pad"])
@pytest.mark.parametrize("seconds", [0.7, 0.5])  # 0.5 s divides the 2 s window, 0.7 s leaves a remainder
def test_shorter_clips_are_padded_like_the_extractor(padding, seconds, dtype):
    truncation = "fusion" if padding == "repeat" else "rand_trunc"
    extractor = ClapFeatureExtractor(truncation=truncation, padding=padding, **SMALL)
    clips = [clip for name, clip in make_clips(16000, seconds).items() if name != "silence_tone"]
    assert_matches(reference(extractor, clips)["input_features"], ours(extractor, clips, dtype)["input_features"],
                   dtype)


def test_repeatpad_hand_built_example():
    module = ClapLogMel(sampling_rate=10, max_length_s=1, fft_window_size=4, hop_length=2, feature_size=2,
                        frequency_max=5.0)
    clip = torch.tensor([[1.0, 2.0, 3.0]])
    assert module.pad_to_window(clip).tolist() == [[1, 2, 3, 1, 2, 3, 1, 2, 3, 0]]
    module.padding = "repeat"
    assert module.pad_to_window(clip).tolist() == [[1, 2, 3, 1, 2, 3, 1, 2, 3, 1]]
    module.padding = "pad"
    assert module.pad_to_window(clip).tolist() == [[1, 2, 3, 0, 0, 0, 0, 0, 0, 0]]


def test_batch_equals_one_clip_at_a_time():
    module = ClapLogMel(truncation="fusion", **SMALL)
    batch = torch.from_numpy(np.stack(list(make_clips(16000, 2).values())))
    together = module(batch)["input_features"]
    for i in range(len(batch)):
        # Bit-equal on CPU here; the slack is for FFT/matmul back ends that block a batch differently.
        torch.testing.assert_close(module(batch[i:i + 1])["input_features"], together[i:i + 1], rtol=0, atol=1e-5)


def test_longer_than_window_raises():
    module = ClapLogMel(**SMALL)
    with pytest.raises(DataError, match="crop"):
        module(torch.zeros(2, 2 * 16000 + 1))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="truncation"):
        ClapLogMel(truncation="random")
    with pytest.raises(ValueError, match="padding"):
        ClapLogMel(padding="longest")
    with pytest.raises(DataError, match="batch, samples"):
        ClapLogMel(**SMALL)(torch.zeros(16000))


def test_from_feature_extractor_copies_every_setting():
    settings = dict(sampling_rate=8000, feature_size=32, fft_window_size=400, hop_length=100, max_length_s=1,
                    frequency_min=50.0, frequency_max=3500.0, truncation="rand_trunc", padding="pad")
    extractor = ClapFeatureExtractor(**settings)
    module = ClapLogMel.from_feature_extractor(extractor)
    copied = (module.sampling_rate, module.fft_window_size, module.hop_length, module.max_length,
              module.truncation, module.padding)
    assert copied == (8000, 400, 100, 8000, "rand_trunc", "pad")
    np.testing.assert_array_equal(module.mel_filters.double().numpy(),
                                  extractor.mel_filters_slaney.astype(np.float32))
    clips = [make_clips(8000, 0.6)["noise"]]
    assert_matches(reference(extractor, clips)["input_features"], ours(extractor, clips)["input_features"],
                   torch.float32)


def test_top_db_is_ignored_like_the_extractor_does():
    """The extractor stores top_db but applies no dB floor; if transformers ever starts to, this fails."""
    extractor = ClapFeatureExtractor(top_db=10, **SMALL)
    clips = [make_clips(16000, 2)["silence_tone"]]
    expected = reference(extractor, clips)["input_features"]
    assert expected.max() - expected.min() > 100
    assert_matches(expected, ours(extractor, clips)["input_features"], torch.float32)
