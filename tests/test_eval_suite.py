"""`tclap evaluate` end to end on tiny data: every test set, two checkpoints, the cache, the report."""
from __future__ import annotations

import csv
import json
import shutil

import pytest
import torch
from torch.utils.data import DataLoader
from transformers import ClapModel, ClapProcessor

from tclap.audio import load_audio
from tclap.cli import main
from tclap.data.datasets import AudioTextCollator, AudioWindow, MixupClips
from tclap.data.library import read_library
from tclap.data.mixup import MANIFEST, read_manifest
from tclap.data.phrasing import label_text
from tclap.errors import DataError
from tclap.eval_suite import model_names, read_test_sets
from tclap.evaluation import tclassify_decisions
from tclap.model import ClapEncoder, ModelConfig, build_tiny, load_clap, save_clap


@torch.no_grad()
def dataset_embeddings(encoder: ClapEncoder, dataset) -> dict[str, torch.Tensor]:
    """The reference path, independent of the cache: the training collator over a MixupClips dataset."""
    encoder.eval()
    parts: dict[str, list] = {k: [] for k in ("audio", "text", "neg_text", "neg_text_index", "neg_audio",
                                               "neg_audio_index")}
    offset = 0
    for batch in DataLoader(dataset, batch_size=32, collate_fn=AudioTextCollator()):
        texts = encoder.tokenize(batch["captions"] + batch["neg_captions"])
        text = encoder.text_embeds(texts["input_ids"], texts["attention_mask"])
        audio = encoder.audio_embeds(torch.cat([batch["audio"], batch["neg_audio"]]))
        b = len(batch["captions"])
        parts["audio"].append(audio[:b])
        parts["text"].append(text[:b])
        parts["neg_text"].append(text[b:])
        parts["neg_text_index"].append(batch["neg_caption_index"] + offset)
        parts["neg_audio"].append(audio[b:])
        parts["neg_audio_index"].append(batch["neg_audio_index"] + offset)
        offset += b
    return {k: torch.cat(v) for k, v in parts.items()}



def test_model_names_are_dir_names_with_parents_only_for_duplicates(tmp_path):
    dirs = [tmp_path / "x" / "run1" / "final", tmp_path / "y" / "run1" / "final", tmp_path / "base"]
    assert model_names(dirs) == ["x/run1/final", "y/run1/final", "base"]
    assert model_names([tmp_path / "a" / "final", tmp_path / "b" / "final"]) == ["a/final", "b/final"]
    assert model_names([tmp_path / "seed0" / "tclap" / "final"]) == ["tclap/final"]   # not a bare "final"
    assert model_names([tmp_path / "run" / "checkpoint-500", tmp_path / "base"]) == ["run/checkpoint-500", "base"]
    with pytest.raises(DataError, match="listed twice"):
        model_names([tmp_path / "base", tmp_path / "x" / ".." / "base"])


def test_test_sets_are_checked_before_any_model_is_loaded(world, tmp_path):
    with pytest.raises(DataError, match="nothing to evaluate on"):
        read_test_sets()
    with pytest.raises(DataError, match="must contain {label}"):
        read_test_sets(zeroshot=world, prompt="A sound")
    with pytest.raises(DataError, match="manifest not found"):
        read_test_sets(pairs=tmp_path / "none.csv")


@pytest.fixture(scope="module")
def library(world, tmp_path_factory):
    """A 12-file ESC-50 layout (one file per class, folds 4 and 5) from the session's sound world."""
    root = tmp_path_factory.mktemp("library")
    (root / "audio").mkdir()
    (root / "meta").mkdir()
    files = read_library(world).files
    chosen = [f for k, c in enumerate(read_library(world).categories) for f in files
              if f.category == c and f.fold == 4 + k % 2]
    rows = ["filename,fold,target,category"]
    for f in chosen:
        shutil.copy(f.path, root / "audio" / f.path.name)
        rows.append(f"{f.path.name},{f.fold},{f.target},{f.category}")
    (root / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def checkpoints(library, mixup_dir, tmp_path_factory):
    records = read_manifest(mixup_dir / MANIFEST)
    captions = [r[k] for r in records for k in ("caption", "neg_caption")]
    captions += [f"A sound of {label_text(c)}" for c in read_library(library).categories]
    root = tmp_path_factory.mktemp("models")
    dirs = []
    for seed, parent in enumerate(("a", "b")):
        model, processor = build_tiny(ModelConfig(vocab_size=300), captions, seed=seed)
        dirs.append(save_clap(model, processor, root / parent / "final", {"made_by": "test"}))
    return dirs


@pytest.fixture(scope="module")
def pairs(library, tmp_path_factory):
    """A Clotho-like manifest over the library: 2 captions for each of 6 clips, one with a negative."""
    path = tmp_path_factory.mktemp("pairs") / "pairs.csv"
    files = read_library(library).files[:6]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["audio", "caption", "negative"])
        for f in files:
            writer.writerow([f"audio/{f.path.name}", f"{label_text(f.category)} then beep", ""])
            writer.writerow([f"audio/{f.path.name}", label_text(f.category), ""])
        writer.writerow([f"audio/{files[0].path.name}", "siren then beep", "beep then siren"])
    return path


def test_evaluate_every_test_set_for_two_checkpoints_then_again_from_the_cache(
        checkpoints, pairs, library, mixup_dir, tmp_path, capsys, monkeypatch):
    data = ["--mixup", str(mixup_dir), "--pairs", str(pairs), "--audio-root", str(library),
            "--zeroshot", str(library), "--cache", str(tmp_path / "cache")]
    main(["evaluate", "--model", *map(str, checkpoints), "--out", str(tmp_path / "eval"), *data])
    printed = capsys.readouterr().out
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert list(metrics) == ["a/final", "b/final"]
    ours = metrics["a/final"]
    for key in ("tclassify_t2a", "tclassify_a2t", "compa_text", "compa_audio", "compa_group", "tclassify_t2a_2_events",
                "mixup_t2a_R@1", "mixup_a2t_mAP@10", "pairs_t2a_R@10", "pairs_a2t_mAP@10", "pairs_tclassify_t2a",
                "zeroshot_esc50_acc", "zeroshot_esc50_acc_fold4", "zeroshot_esc50_acc_fold5"):
        assert 0 <= ours[key] <= 100, key
    assert (ours["n_items"], ours["mixup_n_text"], ours["pairs_n_text"], ours["pairs_n_audio"],
            ours["pairs_n_negatives"], ours["zeroshot_esc50_n"]) == (10, 10, 13, 6, 1, 12)
    table = (tmp_path / "eval" / "table.md").read_text()
    assert table.splitlines()[2].startswith("| a/final | ") and table in printed
    assert (tmp_path / "eval" / "margins.png").stat().st_size > 0

    # The cached path scores T-Classify as the dataset path does (one near-tie may flip) ...
    encoder = ClapEncoder(*load_clap(checkpoints[0]))
    clips = MixupClips(mixup_dir, "test", AudioWindow(16000, 4.0, train=False))
    t2a, a2t = tclassify_decisions(dataset_embeddings(encoder, clips))
    assert ours["tclassify_t2a"] == pytest.approx(100 * float(t2a.mean()), abs=100 / len(t2a) + 1e-6)
    assert ours["tclassify_a2t"] == pytest.approx(100 * float(a2t.mean()), abs=100 / len(a2t) + 1e-6)

    # ... and zero-shot as transformers' own feature extractor and ClapModel do.
    model, processor = ClapModel.from_pretrained(checkpoints[0]).eval(), ClapProcessor.from_pretrained(checkpoints[0])
    library = read_library(library)
    with torch.no_grad():
        waves = [load_audio(f.path, 16000) for f in library.files]
        audio = model.get_audio_features(**processor.feature_extractor(
            waves, sampling_rate=16000, return_tensors="pt")).pooler_output
        prompts = [f"A sound of {label_text(c)}" for c in library.categories]
        text = model.get_text_features(**processor.tokenizer(prompts, padding=True, return_tensors="pt")).pooler_output
    predicted = (torch.nn.functional.normalize(audio, dim=-1) @ torch.nn.functional.normalize(text, dim=-1).T).argmax(1)
    truth = torch.tensor([library.categories.index(f.category) for f in library.files])
    expected = 100 * float((predicted == truth).float().mean())
    assert ours["zeroshot_esc50_acc"] == pytest.approx(expected, abs=100 / len(truth) + 1e-6)

    def no_compute(*args, **kwargs):
        raise AssertionError("computed an embedding that is in the cache")

    monkeypatch.setattr(ClapEncoder, "audio_embeds", no_compute)
    monkeypatch.setattr(ClapEncoder, "text_embeds", no_compute)
    main(["evaluate", "--model", str(checkpoints[0]), "--out", str(tmp_path / "again"), *data])
    assert json.loads((tmp_path / "again" / "metrics.json").read_text()) == {"a/final": ours}  # its run's name too


def test_evaluate_without_a_test_set_is_a_one_line_error(checkpoints, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", "--model", str(checkpoints[0]), "--out", str(tmp_path)])
    assert exit_.value.code == 2
    assert "nothing to evaluate on" in capsys.readouterr().err


@pytest.fixture(scope="module")
def compa_order_csv(mixup_dir, tmp_path_factory):
    """Test-split clips written as a CompA-order file, with the audio paths relative to the mixed-up folder and
    an extra column the reader ignores: three items are a clip and its order-swapped twin, three pair two
    different clips (the scores do not need the two to be reversals)."""
    test = [r for r in read_manifest(mixup_dir / MANIFEST) if r["split"] == "test"]
    records = test[:3] + [{"audio": a["audio"], "caption": a["caption"], "neg_audio": b["audio"],
                           "neg_caption": b["caption"]} for a, b in zip(test[3:6], test[6:9])]
    path = tmp_path_factory.mktemp("compa") / "compa_order.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["pair_file", "reversed_pair_file", "pair_caption", "reversed_pair_caption", "source"])
        for r in records:
            writer.writerow([r["audio"], r["neg_audio"], r["caption"], r["neg_caption"], "synthesised"])
    return path, records


@torch.no_grad()
def test_compa_order_scores_match_a_hand_computation(checkpoints, compa_order_csv, mixup_dir, tmp_path):
    path, records = compa_order_csv
    main(["evaluate", "--model", str(checkpoints[0]), "--out", str(tmp_path / "out"), "--compa-order", str(path),
          "--audio-root", str(mixup_dir)])
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())[f"{checkpoints[0].parent.name}/final"]

    model, processor = load_clap(checkpoints[0])
    encoder = ClapEncoder(model, processor).eval()

    def audio(name):  # one file at a time, its first window, as the evaluation rule says
        wave = load_audio(mixup_dir / name, encoder.sample_rate)[:encoder.window]
        wave = torch.nn.functional.pad(torch.from_numpy(wave), (0, encoder.window - len(wave)))
        return encoder.audio_embeds(wave[None])[0]

    def text(caption):
        tokens = encoder.tokenize([caption])
        return encoder.text_embeds(tokens["input_ids"], tokens["attention_mask"])[0]

    right = {"text": 0, "audio": 0, "group": 0, "t2a": 0, "a2t": 0}
    for r in records:
        a0, a1, t0, t1 = audio(r["audio"]), audio(r["neg_audio"]), text(r["caption"]), text(r["neg_caption"])
        s = {(i, j): float(t @ a) for i, t in enumerate((t0, t1)) for j, a in enumerate((a0, a1))}
        text_ok = s[0, 0] > s[1, 0] and s[1, 1] > s[0, 1]    # each clip picks its caption
        audio_ok = s[0, 0] > s[0, 1] and s[1, 1] > s[1, 0]   # each caption picks its clip
        right["text"] += text_ok
        right["audio"] += audio_ok
        right["group"] += text_ok and audio_ok
        right["t2a"] += s[0, 0] > s[1, 0]
        right["a2t"] += s[0, 0] > s[0, 1]
    n = len(records)
    # An untrained model wins no Winoground pair (all its captions embed alike), but its T-Classify
    # outcomes are mixed, so a swapped column (pair / reversed) would change them.
    assert 0 < right["t2a"] < n
    assert metrics["compa_order_items"] == n
    for key in ("text", "audio", "group"):
        assert metrics[f"compa_order_{key}"] == pytest.approx(100.0 * right[key] / n)
    assert metrics["compa_order_tclassify_t2a"] == pytest.approx(100.0 * right["t2a"] / n)
    assert metrics["compa_order_tclassify_a2t"] == pytest.approx(100.0 * right["a2t"] / n)


def test_bad_compa_order_files_name_the_file_and_row(compa_order_csv, mixup_dir, tmp_path):
    path, records = compa_order_csv
    lines = path.read_text().splitlines()
    cases = {
        "no_column.csv": ("pair_file,pair_caption,reversed_pair_caption\n", "missing column(s) reversed_pair_file"),
        "empty.csv": (lines[0] + "\n" + lines[1] + "\naudio/x.wav,,a then b,b then a,s\n",
                      "empty.csv:3: empty reversed_pair_file"),
        "missing.csv": (lines[0] + "\naudio/nope.wav," + lines[1].split(",", 1)[1] + "\n",
                        f"missing.csv:2: audio file {mixup_dir / 'audio' / 'nope.wav'} not found"),
        "outside.csv": (lines[0] + "\n../secret.wav," + lines[1].split(",", 1)[1] + "\n",
                        "outside.csv:2: '../secret.wav' points outside the audio folder"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_text(content)
        with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
            read_test_sets(compa_order=tmp_path / name, audio_root=mixup_dir)
    with pytest.raises(DataError, match="CompA-order file not found"):
        read_test_sets(compa_order=tmp_path / "absent.csv")
