"""train_tclap.py on the small offline world: saved files, validation, kill -9 and resume."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import ClapModel, ClapProcessor, ClapTextModelWithProjection

from tclap.data.orderfree import write_order_free_pairs
from tclap.errors import DataError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def run_config(mixup_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tclap_run")
    pairs = folder / "orderfree.jsonl"
    write_order_free_pairs(mixup_dir, pairs)

    def write(output_dir: Path, **train) -> Path:
        config = {
            "model": {"init": "tiny", "vocab_size": 400},
            "data": {"mixup": str(mixup_dir), "positive_only": [str(pairs)],
                     "batch_mix": {"positive_only": 4, "temporal": 1}},
            "loss": {"temporal_weight": 0.5},
            "train": {"output_dir": str(output_dir), "steps": 4, "batch_size": 5, "lr": 1e-3, "warmup_steps": 2,
                      "checkpoint_every": 2, "validate_every": 2, "log_every": 1, "seed": 0, **train},
        }
        path = output_dir.with_suffix(".yaml")
        path.write_text(yaml.safe_dump(config))
        return path

    return write


def test_two_steps_write_a_loadable_checkpoint_and_metrics(run_config, tmp_path):
    from train_tclap import main

    main(["--config", str(run_config(tmp_path / "run"))])
    final = tmp_path / "run" / "final"
    for name in ("model.safetensors", "config.json", "preprocessor_config.json", "tokenizer.json",
                 "tclap_provenance.json"):
        assert (final / name).exists(), name
    model = ClapModel.from_pretrained(final)
    assert ClapProcessor.from_pretrained(final).feature_extractor.sampling_rate == 16000
    text = ClapTextModelWithProjection.from_pretrained(final)
    assert torch.equal(text.text_projection.linear1.weight, model.text_projection.linear1.weight)
    names = {r["name"] for r in csv.DictReader(open(tmp_path / "run" / "metrics.csv"))}
    assert {"loss", "contrastive_loss", "temporal_loss", "val/tclassify_t2a", "val/tclassify_a2t"} <= names
    assert (tmp_path / "run" / "checkpoint-4" / "model" / "model.safetensors").exists()


def test_unknown_config_key_is_a_clear_error(run_config, tmp_path, capsys):
    from train_tclap import main

    with pytest.raises(SystemExit):
        main(["--config", str(run_config(tmp_path / "run")), "--set", "train.learning_rate=1"])
    assert "unknown key(s) learning_rate; valid keys: output_dir, steps" in capsys.readouterr().err


@pytest.mark.slow
def test_kill_9_then_resume_reaches_the_same_weights(run_config, tmp_path):
    steps = dict(steps=8, checkpoint_every=2, validate_every=100, log_every=4)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT)}

    def launch(script: Path, config: Path, *extra: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, str(script), *extra, "--config", str(config)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    straight = launch(ROOT / "train_tclap.py", run_config(tmp_path / "straight", **steps))
    killed_config = run_config(tmp_path / "killed", **steps)
    # halts for good after writing checkpoint-4 (tests/train_until_checkpoint.py): killed exactly there
    victim = launch(ROOT / "tests" / "train_until_checkpoint.py", killed_config, "4")
    halted = tmp_path / "killed" / "halted-at-4"
    deadline = time.time() + 240
    while not halted.exists() and victim.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert halted.exists(), victim.stderr.read().decode()[-2000:] if victim.poll() is not None else "timed out"
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    assert not (tmp_path / "killed" / "final").exists()
    assert [p.name for p in sorted((tmp_path / "killed").glob("checkpoint-*"))] == ["checkpoint-2", "checkpoint-4"]
    resumed = launch(ROOT / "train_tclap.py", killed_config, "--resume", "latest")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()[-2000:]
    assert straight.wait(timeout=300) == 0, straight.stderr.read().decode()[-2000:]
    a = load_file(tmp_path / "straight" / "final" / "model.safetensors")
    b = load_file(tmp_path / "killed" / "final" / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_evaluate_scores_t_classify_like_an_independent_hf_computation(run_config, mixup_dir, tmp_path):
    """`tclap evaluate` (our torch front end) against ClapFeatureExtractor + ClapModel.get_*_features."""
    import json

    from tclap.cli import main as tclap_main
    from tclap.data.mixup import MANIFEST, read_manifest
    from tclap.audio import load_audio
    from train_tclap import main

    main(["--config", str(run_config(tmp_path / "run", steps=2))])
    final = tmp_path / "run" / "final"
    tclap_main(["evaluate", "--model", str(final), "--mixup", str(mixup_dir), "--split", "test",
                "--out", str(tmp_path / "eval")])
    ours = json.loads((tmp_path / "eval" / "metrics.json").read_text())[f"{final.parent.name}/final"]
    assert (tmp_path / "eval" / "table.md").read_text().startswith("| model |")

    model, processor = ClapModel.from_pretrained(final).eval(), ClapProcessor.from_pretrained(final)
    records = [r for r in read_manifest(mixup_dir / MANIFEST) if r["split"] == "test"]

    def audio(paths):
        waves = [load_audio(mixup_dir / p, 16000) for p in paths]
        features = processor.feature_extractor(waves, sampling_rate=16000, return_tensors="pt")
        return model.get_audio_features(**features).pooler_output

    def text(captions):
        return model.get_text_features(**processor.tokenizer(captions, padding=True, return_tensors="pt")).pooler_output

    with torch.no_grad():
        a, neg_a = audio([r["audio"] for r in records]), audio([r["neg_audio"] for r in records])
        t, neg_t = text([r["caption"] for r in records]), text([r["neg_caption"] for r in records])
    t2a = 100 * float(((a * t).sum(-1) > (a * neg_t).sum(-1)).float().mean())
    a2t = 100 * float(((t * a).sum(-1) > (t * neg_a).sum(-1)).float().mean())
    assert ours["tclassify_t2a"] == pytest.approx(t2a, abs=100 / len(records) + 1e-9)  # one near-tie may flip
    assert ours["tclassify_a2t"] == pytest.approx(a2t, abs=100 / len(records) + 1e-9)
    assert ours["n_items"] == len(records) == ours["n_seen_phrasing"] + ours["n_unseen_phrasing"]


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "configs" / "tclap").glob("*.yaml")))
def test_every_shipped_tclap_config_is_a_valid_run_config(name):
    from tclap.config import read_run_config
    from tclap.train import RunConfig

    cfg = read_run_config(RunConfig, ROOT / "configs" / "tclap" / name, [])
    assert cfg.train.steps > 0 and 0.0 <= cfg.data.word_insertion <= 1.0


def test_validation_leaves_a_fine_tune_of_a_saved_model_unchanged(run_config, tmp_path):
    """A saved model loads in eval mode; validating it once switched it to train mode for the rest of the
    run (the mel BatchNorm then normalised by batch), so where validation fell changed the losses."""
    from train_tclap import main

    main(["--config", str(run_config(tmp_path / "start", steps=2))])
    losses = {}
    for every in (1, 4):
        out = tmp_path / f"every{every}"
        main(["--config", str(run_config(out, steps=3, validate_every=every)),
              "--set", f"model.init={tmp_path / 'start' / 'final'}"])
        losses[every] = [r["value"] for r in csv.DictReader(open(out / "metrics.csv")) if r["name"] == "loss"]
    assert len(losses[1]) == 3 and losses[1] == losses[4]


def test_a_frozen_tower_stays_fixed_through_training_and_validation(run_config, tmp_path):
    """Its BatchNorm statistics too: it stays in eval mode in train() and after every validation."""
    from train_tclap import main

    main(["--config", str(run_config(tmp_path / "start", steps=2))])
    config = run_config(tmp_path / "frozen", steps=3, validate_every=1)
    config.write_text(yaml.safe_dump({**yaml.safe_load(config.read_text()), "freeze": ["audio_model", "logit_scale_a"]}))
    main(["--config", str(config), "--set", f"model.init={tmp_path / 'start' / 'final'}"])
    start = load_file(tmp_path / "start" / "final" / "model.safetensors")
    final = load_file(tmp_path / "frozen" / "final" / "model.safetensors")
    audio = [k for k in start if k.startswith("audio_model.")]
    assert any("running_mean" in k for k in audio) and "logit_scale_a" in start
    assert all(torch.equal(start[k], final[k]) for k in audio + ["logit_scale_a"])
    assert not all(torch.equal(start[k], final[k]) for k in start if k.startswith("text_model."))


class RecordingEncoder(torch.nn.Module):
    """Stands in for ClapEncoder: embeddings are slices of the inputs; records each audio forward's clips."""

    def __init__(self):
        super().__init__()
        self.model = torch.nn.Module()
        self.model.logit_scale_a = torch.nn.Parameter(torch.tensor(2.0))
        self.model.logit_scale_t = torch.nn.Parameter(torch.tensor(2.0))
        self.clips_per_forward = []

    def audio_embeds(self, audio):
        self.clips_per_forward.append(len(audio))
        return torch.nn.functional.normalize(audio[:, :4], dim=-1)

    def text_embeds(self, input_ids, attention_mask):
        return torch.nn.functional.normalize(input_ids[:, :4].float(), dim=-1)


@pytest.mark.parametrize("inversion_weight", [0.0, 1.0])
def test_swapped_clips_are_loaded_and_embedded_only_for_the_inversion_term(run_config, tmp_path, inversion_weight):
    """L_t and the hinge contrast captions; loading and embedding the swapped clips as well made the main
    job's step 1.5x slower (benchmarks/tclap_step.py) for nothing unless the inversion term reads them."""
    from tclap.config import read_run_config
    from tclap.train import RunConfig, prepare

    cfg = read_run_config(RunConfig, run_config(tmp_path / "run"), [f"loss.inversion_weight={inversion_weight}"])
    module, loader, _ = prepare(cfg)
    batch = next(iter(loader))
    clips, embed = [], module.encoder.audio_embeds
    module.encoder.audio_embeds = lambda audio: clips.append(len(audio)) or embed(audio)
    terms = module(batch)
    swapped = len(batch["neg_caption_index"])  # each mixed-up clip brings a swapped caption and a swapped clip
    assert swapped > 0 and len(batch["neg_audio"]) == (swapped if inversion_weight else 0)
    assert clips == [len(batch["captions"]) + len(batch["neg_audio"])]
    assert "temporal_loss" in terms and ("inversion_loss" in terms) == bool(inversion_weight)


def test_the_inversion_term_reads_the_swapped_clips_embedded_in_the_forward():
    """Both sides of the inversion term, the audio side on the swapped clips' embeddings."""
    from tclap.losses import LossConfig, TclapLoss
    from tclap.train import EncoderWithLoss

    g = torch.Generator().manual_seed(0)
    batch = {"captions": ["a", "b", "c"], "audio": torch.rand(3, 8, generator=g) + 0.1,
             "neg_audio": torch.rand(2, 8, generator=g) + 0.1, "neg_audio_index": torch.tensor([0, 2]),
             "text": {"input_ids": torch.randint(1, 9, (5, 6), generator=g), "attention_mask": torch.ones(5, 6)},
             "neg_caption_index": torch.tensor([0, 2])}
    encoder = RecordingEncoder()
    loss = TclapLoss(LossConfig(temporal_weight=1.0, separation_weight=1.0, inversion_weight=1.0))
    terms = EncoderWithLoss(encoder, loss)(batch)
    assert encoder.clips_per_forward == [5]
    assert {"contrastive_loss", "temporal_loss", "separation_loss", "inversion_loss"} <= set(terms)
    audio = encoder.audio_embeds(torch.cat([batch["audio"], batch["neg_audio"]]))
    text = encoder.text_embeds(batch["text"]["input_ids"], None)
    audio_side = loss.inversion(text[:3], audio[:3], audio[3:], batch["neg_audio_index"], encoder.model.logit_scale_t)
    text_side = loss.inversion(audio[:3], text[:3], text[3:], batch["neg_caption_index"], encoder.model.logit_scale_a)
    torch.testing.assert_close(terms["inversion_loss"], (audio_side + text_side) / 2)


@pytest.mark.parametrize("one_order", [False, True])
def test_one_order_per_batch_gives_the_sampler_each_clips_event_order(run_config, mixup_dir, tmp_path, one_order,
                                                                      monkeypatch):
    import tclap.train
    from tclap.config import read_run_config
    from tclap.data.mixup import MANIFEST, read_manifest
    from tclap.train import RunConfig, prepare

    # as under `accelerate launch --num_processes 3`: the orders hold across the 3 batches of a step
    monkeypatch.setattr(tclap.train, "PartialState", lambda: type("State", (), {"num_processes": 3})())
    cfg = read_run_config(RunConfig, run_config(tmp_path / "run"), [f"data.one_order_per_batch={one_order}"])
    _, loader, _ = prepare(cfg)
    expected = [tuple(e["label"] for e in r["events"]) for r in read_manifest(mixup_dir / MANIFEST)
                if r["split"] == "train"]
    assert loader.batch_sampler.orders == (expected if one_order else None)
    assert loader.batch_sampler.group == (3 if one_order else 1)
    assert all(len(order) == 2 for order in expected)


def test_one_order_per_batch_without_mixed_up_clips_is_a_clear_error(run_config, mixup_dir, tmp_path):
    from tclap.config import read_run_config
    from tclap.data.mixup import MANIFEST, read_manifest
    from tclap.train import RunConfig, prepare

    captions = tmp_path / "temporal.jsonl"  # a caption set with negatives: no events named
    captions.write_text("".join(json.dumps({"audio": str(mixup_dir / r["audio"]), "caption": r["caption"],
                                            "negative": r["neg_caption"]}) + "\n"
                                for r in read_manifest(mixup_dir / MANIFEST)))
    cfg = read_run_config(RunConfig, run_config(tmp_path / "run"), [
        "data.mixup=null", f"data.temporal_captions=[{captions}]", "data.one_order_per_batch=true"])
    with pytest.raises(DataError, match="one_order_per_batch needs mixed-up clips"):
        prepare(cfg)
