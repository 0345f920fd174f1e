from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from tclap.audio import fit_length, load_audio, normalize_rms, peak_db, rms_db, trim_silence, write_wav
from tclap.errors import DataError


def tone(freq, seconds, rate, amp=0.5):
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_resampling_keeps_pitch_and_duration(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, tone(440.0, 1.0, 22050), 22050)
    audio = load_audio(path, 16000)
    assert len(audio) == 16000
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * 16000 / len(audio) - 440.0) <= 1.0


def test_stereo_is_downmixed_to_the_channel_mean(tmp_path):
    left, right = tone(300, 0.5, 16000), tone(700, 0.5, 16000, amp=0.2)
    sf.write(tmp_path / "s.wav", np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "s.wav", 16000), (left + right) / 2, atol=1e-6)


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "not found"),
    (lambda p: p.write_bytes(b"RIFF\x00\x00not really a wave file"), "cannot decode"),
    (lambda p: sf.write(p, np.zeros(0, dtype=np.float32), 16000), "empty audio"),
    (lambda p: sf.write(p, np.array([0.1, np.nan, 0.2], dtype=np.float32), 16000, subtype="FLOAT"), "NaN"),
])
def test_unusable_files_raise_naming_the_file(tmp_path, make, message):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(DataError, match=message) as error:
        load_audio(path, 16000)
    assert str(path) in str(error.value)


def test_too_short_file_raises(tmp_path):
    sf.write(tmp_path / "short.wav", tone(440, 0.05, 16000), 16000)
    with pytest.raises(DataError, match="too short"):
        load_audio(tmp_path / "short.wav", 16000, min_seconds=0.1)


def test_levels_match_hand_computation():
    x = np.array([0.5, -0.5, 0.5, -0.5], dtype=np.float32)
    assert rms_db(x) == pytest.approx(20 * np.log10(0.5))
    assert peak_db(x) == pytest.approx(20 * np.log10(0.5))
    assert rms_db(normalize_rms(x, -20.0)) == pytest.approx(-20.0, abs=1e-4)
    assert peak_db(np.zeros(4)) == -np.inf
    np.testing.assert_array_equal(normalize_rms(np.zeros(4, np.float32), -20), np.zeros(4))


def test_trim_silence_finds_the_event():
    rate = 16000
    x = np.concatenate([np.zeros(rate), tone(1000, 0.5, rate), np.zeros(rate)])
    trimmed = trim_silence(x, top_db=35)
    assert abs(len(trimmed) - rate // 2) < 600  # within a frame or so of 0.5 s


def test_fit_length_repeat_pads_and_crops():
    x = np.array([1, 2, 3], dtype=np.float32)
    np.testing.assert_array_equal(fit_length(x, 8), [1, 2, 3, 1, 2, 3, 0, 0])
    y = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(fit_length(y, 4, crop="start"), [0, 1, 2, 3])
    np.testing.assert_array_equal(fit_length(y, 4, crop="center"), [3, 4, 5, 6])
    crops = {tuple(fit_length(y, 4, rng=np.random.default_rng(s))) for s in range(30)}
    assert len(crops) > 1 and all(c[1] - c[0] == 1 for c in crops)


def test_write_wav_is_atomic_and_round_trips(tmp_path):
    x = tone(440, 0.1, 16000)
    write_wav(tmp_path / "x.wav", x, 16000)
    assert [p.name for p in tmp_path.iterdir()] == ["x.wav"]
    np.testing.assert_allclose(load_audio(tmp_path / "x.wav", 16000), x, atol=1 / 32767 + 1e-6)


def truncated_wav(path):
    """A PCM16 WAV cut to half its bytes: the header still declares 16,000 samples, 7,989 remain."""
    sf.write(path, tone(440, 1.0, 16000), 16000, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


def test_a_wav_shorter_than_its_header_warns_naming_the_file_and_strict_makes_it_an_error(tmp_path):
    import warnings

    from tclap.audio import TruncatedAudioWarning, strict_audio

    path = truncated_wav(tmp_path / "cut.wav")
    with pytest.warns(TruncatedAudioWarning, match=r"cut.wav: the WAV header declares 16000 samples but 7989"):
        assert len(load_audio(path, 16000)) == 7989
    sf.write(tmp_path / "whole.wav", tone(440, 1.0, 16000), 16000, subtype="PCM_16")
    sf.write(tmp_path / "float.wav", tone(440, 1.0, 16000), 16000, subtype="FLOAT")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_audio(tmp_path / "whole.wav", 16000)
        load_audio(tmp_path / "float.wav", 16000)  # no PCM header count: libsndfile's reading stands
        strict_audio()
        with pytest.raises(DataError, match="cut.wav: the WAV header declares"):
            load_audio(path, 16000)
