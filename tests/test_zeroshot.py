"""Zero-shot classification: accuracy on hand-built embeddings, and the three benchmark layouts."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fake_embedder import DictEmbedder
from tclap.audio import write_wav
from tclap.errors import DataError
from tclap.zeroshot import class_prompts, read_esc50, read_us8k, read_vggsound, zero_shot, zero_shot_accuracy


def wav(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(path, np.full(1600, 0.1, dtype=np.float32), 16000)


def test_accuracy_overall_and_per_fold():
    class_text = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    audio = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.6, 0.4]])   # predicted 0, 1, 0, 0
    labels = torch.tensor([0, 1, 1, 0])                                          # right, right, wrong, right
    result = zero_shot_accuracy(audio, class_text, labels, [1, 1, 2, 2])
    # true minus best other, by hand: 0.9-0.1, 0.8-0.2, 0.3-0.7, 0.6-0.4
    margin = pytest.approx((0.8 + 0.6 - 0.4 + 0.2) / 4)
    assert result == {"acc": 75.0, "margin": margin, "acc_fold1": 100.0, "margin_fold1": pytest.approx(0.7),
                      "acc_fold2": 50.0, "margin_fold2": pytest.approx(-0.1), "n": 4}
    assert zero_shot_accuracy(audio, class_text, labels, [None] * 4) == {"acc": 75.0, "margin": margin, "n": 4}


def test_margin_is_against_the_best_other_class_of_three():
    class_text = torch.eye(3)
    audio = torch.tensor([[0.5, 0.2, 0.4], [0.1, 0.3, 0.6]])
    labels = torch.tensor([0, 1])                              # 0.5 - 0.4 and 0.3 - 0.6
    assert zero_shot_accuracy(audio, class_text, labels, [None] * 2)["margin"] == pytest.approx((0.1 - 0.3) / 2)
    assert "margin" not in zero_shot_accuracy(audio[:, :1], class_text[:1, :1], torch.tensor([0, 0]), [None] * 2)


def test_prompts_read_underscores_as_spaces_and_need_a_label_slot():
    assert class_prompts(["dog_bark", "rain"]) == ["A sound of dog bark", "A sound of rain"]
    assert class_prompts(["siren"], "{label} can be heard") == ["siren can be heard"]
    with pytest.raises(DataError, match="must contain {label}"):
        class_prompts(["siren"], "A sound")


def test_zero_shot_scores_each_clip_against_every_class_prompt(tmp_path):
    for name in ("a.wav", "b.wav", "c.wav"):
        wav(tmp_path / "audio" / name)
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "esc50.csv").write_text("filename,fold,target,category\n"
                                                 "a.wav,1,0,dog_bark\nb.wav,1,1,rain\nc.wav,2,1,rain\n")
    clips = read_esc50(tmp_path)
    embedder = DictEmbedder(audio={"a.wav": [1, 0], "b.wav": [0, 1], "c.wav": [1, 0.2]},
                            text={"The dog bark": [1, 0], "The rain": [0, 1]})
    result = zero_shot(embedder, clips, "The {label}")
    assert result == {"acc": pytest.approx(100 * 2 / 3), "margin": pytest.approx((1 + 1 + 0.2 - 1) / 3),
                      "acc_fold1": 100.0, "margin_fold1": pytest.approx(1.0), "acc_fold2": 0.0,
                      "margin_fold2": pytest.approx(0.2 - 1), "n": 3}


def test_us8k_layout(tmp_path):
    meta = tmp_path / "metadata" / "UrbanSound8K.csv"
    meta.parent.mkdir()
    meta.write_text("slice_file_name,fsID,start,end,salience,fold,classID,class\n"
                    "1-0.wav,1,0,1,1,1,3,dog_bark\n2-0.wav,2,0,1,1,10,8,siren\n")
    wav(tmp_path / "audio" / "fold1" / "1-0.wav")
    with pytest.raises(DataError, match=r"UrbanSound8K.csv:3: audio file .*fold10/2-0.wav not found"):
        read_us8k(tmp_path)
    wav(tmp_path / "audio" / "fold10" / "2-0.wav")
    clips = read_us8k(tmp_path)
    assert [(c.path.relative_to(tmp_path).as_posix(), c.label, c.fold) for c in clips] == [
        ("audio/fold1/1-0.wav", "dog_bark", 1), ("audio/fold10/2-0.wav", "siren", 10)]
    meta.write_text("slice_file_name,fsID,fold,classID\n1-0.wav,1,1,3\n")
    with pytest.raises(DataError, match="UrbanSound8K.csv: missing column.*class"):
        read_us8k(tmp_path)


def test_vggsound_layout_keeps_the_test_split(tmp_path):
    (tmp_path / "vggsound.csv").write_text('abc,30,"engine accelerating, revving",test\n'
                                           "def,0,dog barking,train\nghi,5,dog barking,test\n")
    wav(tmp_path / "audio" / "abc_000030.wav")
    with pytest.raises(DataError, match=r"vggsound.csv:3: audio file .*ghi_000005.wav not found"):
        read_vggsound(tmp_path)
    wav(tmp_path / "audio" / "ghi_000005.wav")
    clips = read_vggsound(tmp_path)
    assert [(c.path.name, c.label, c.fold) for c in clips] == [
        ("abc_000030.wav", "engine accelerating, revving", None), ("ghi_000005.wav", "dog barking", None)]
    wav(tmp_path / "audio" / "def-0.wav")
    assert [c.path.name for c in read_vggsound(tmp_path, "{youtube_id}-{start_seconds}.wav", "train")] == ["def-0.wav"]


def test_vggsound_bad_rows_name_the_line(tmp_path):
    (tmp_path / "vggsound.csv").write_text("abc,30,dog,test\nabc,3.5,dog,test\n")
    wav(tmp_path / "audio" / "abc_000030.wav")
    with pytest.raises(DataError, match="vggsound.csv:2: start_seconds must be an integer"):
        read_vggsound(tmp_path)
    (tmp_path / "vggsound.csv").write_text("abc,30,test\n")
    with pytest.raises(DataError, match="vggsound.csv:1: expected 4 columns"):
        read_vggsound(tmp_path)
    (tmp_path / "vggsound.csv").write_text("abc,30,dog,test\n")
    with pytest.raises(DataError, match="name pattern '{id}.wav'"):
        read_vggsound(tmp_path, "{id}.wav")
    with pytest.raises(DataError, match=r"split 'val'.*no clips"):
        read_vggsound(tmp_path, split="val")


def test_esc50_layout_errors_name_the_row(tmp_path):
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "esc50.csv").write_text("filename,fold,target,category\nmissing.wav,1,0,dog\n")
    with pytest.raises(DataError, match="esc50.csv:2: audio file .*missing.wav not found"):
        read_esc50(tmp_path)
