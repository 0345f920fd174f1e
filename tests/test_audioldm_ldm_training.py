"""AudioLDM UNet training: noise schedule, condition choice and CFG drop, cache, resume, bad input, end to end."""
from __future__ import annotations

import csv
import json
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import load_file

from audioldm_cond.encoders import resolve_encoder
from audioldm_cond.ldm_training import (AudioLdmTraining, ConditionConfig, LatentDiffusionObjective, LdmModelConfig,
                                        LdmRunConfig, build_unet, choose_condition, make_trainer, noise_scheduler, run)
from audioldm_cond.mel import AudioLdmMel
from audioldm_cond.pipeline import generate, load_pipeline, tiny_unet
from tclap.config import build_run_config, read_run_config
from audioldm_world import WIDTH, ldm_sections, save_quick_vocoder, save_tiny_clap, save_tiny_vae, write_config
from tclap.audio import load_audio
from tclap.data.mixup import MANIFEST, read_manifest
from tclap.errors import DataError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def parts(mixup_dir, tmp_path_factory):
    """(tiny CLAP directory, tiny VAE directory, quick vocoder directory)."""
    folder = tmp_path_factory.mktemp("ldm_parts")
    return (save_tiny_clap(mixup_dir, folder / "clap"), save_tiny_vae(folder / "vae"),
            save_quick_vocoder(folder / "vocoder"))


@pytest.fixture
def sections(parts, mixup_dir, tmp_path):
    def make(name: str = "run", **overrides: dict) -> dict:
        return ldm_sections(tmp_path / name, mixup_dir, *parts, **overrides)

    return make


def config(sections: dict) -> LdmRunConfig:
    return build_run_config(LdmRunConfig, sections, "test")


def test_noise_schedule_is_audioldms_scaled_linear():
    """Betas evenly spaced in sqrt from 0.0015 to 0.0195 over 1000 steps; z_t = sqrt(abar) z0 + sqrt(1 - abar) eps."""
    betas = np.linspace(np.sqrt(0.0015), np.sqrt(0.0195), 1000, dtype=np.float64) ** 2
    alphas_cumprod = np.cumprod(1.0 - betas)
    scheduler = noise_scheduler()
    assert scheduler.config.prediction_type == "epsilon"
    assert np.allclose(scheduler.betas.numpy(), betas, rtol=1e-5)
    z0, eps = torch.randn(3, 8, 4, 4), torch.randn(3, 8, 4, 4)
    t = torch.tensor([0, 500, 999])
    expected = (np.sqrt(alphas_cumprod[t.numpy()])[:, None, None, None] * z0.numpy()
                + np.sqrt(1 - alphas_cumprod[t.numpy()])[:, None, None, None] * eps.numpy())
    assert np.allclose(scheduler.add_noise(z0, eps, t).numpy(), expected, atol=1e-5)


def test_cfg_drop_one_gives_only_the_null_embedding_and_zero_none():
    g = torch.Generator().manual_seed(0)
    text, audio, null = torch.randn(64, 8, generator=g), torch.randn(64, 8, generator=g), torch.randn(8, generator=g)
    assert (choose_condition(text, audio, 0.5, null, cfg_drop=1.0) == null).all()
    kept = choose_condition(text, audio, 0.5, null, cfg_drop=0.0)
    assert not (kept == null).all(dim=1).any()
    from_audio = (kept == audio).all(dim=1)
    assert from_audio.any() and not from_audio.all()  # mix: some rows audio, the others text
    assert ((kept == text).all(dim=1) == ~from_audio).all()
    assert torch.equal(choose_condition(text, None, 0.0, null, 0.0), text)
    assert torch.equal(choose_condition(None, audio, 1.0, null, 0.0), audio)
    dropped = (choose_condition(text, audio, 0.5, null, cfg_drop=0.25) == null).all(dim=1).float().mean()
    assert 0.05 < float(dropped) < 0.5


def test_the_unet_gets_the_empty_caption_embedding_when_every_condition_is_dropped(parts):
    clap_dir, vae_dir, _ = parts
    encoder = resolve_encoder(str(clap_dir))
    seen = {}

    class RecordingUnet(torch.nn.Module):
        def forward(self, sample, timestep, encoder_hidden_states=None, class_labels=None):
            seen["labels"] = class_labels
            return type("Out", (), {"sample": torch.zeros_like(sample)})()

    vae = AutoencoderKL.from_pretrained(vae_dir)
    for cfg_drop, expected in ((1.0, encoder.text_embeds([""]).expand(4, -1)),
                               (0.0, encoder.text_embeds(["siren and then knock"] * 4))):
        objective = LatentDiffusionObjective(vae, encoder, ConditionConfig(mode="text", cfg_drop=cfg_drop), 100)
        features = objective.encode(torch.randn(4, 16000) * 0.1, ["siren and then knock"] * 4)
        objective.loss(RecordingUnet(), features)
        assert torch.allclose(seen["labels"], expected, atol=1e-6)


def test_v_prediction_target_is_hand_computed_v(parts):
    """v = sqrt(abar_t) eps - sqrt(1 - abar_t) z0 (Salimans & Ho), from the same hand-built betas."""
    clap_dir, vae_dir, _ = parts
    objective = LatentDiffusionObjective(AutoencoderKL.from_pretrained(vae_dir), resolve_encoder(str(clap_dir)),
                                         ConditionConfig(mode="text"), 100, prediction_type="v_prediction")
    abar = np.cumprod(1.0 - np.linspace(np.sqrt(0.0015), np.sqrt(0.0195), 1000, dtype=np.float64) ** 2)
    z0, eps, t = torch.randn(3, 8, 4, 4), torch.randn(3, 8, 4, 4), torch.tensor([0, 500, 999])
    a = abar[t.numpy()][:, None, None, None]
    expected = np.sqrt(a) * eps.numpy() - np.sqrt(1 - a) * z0.numpy()
    assert np.allclose(objective.target(z0, eps, t).numpy(), expected, atol=1e-5)
    eps_objective = LatentDiffusionObjective(objective.vae, objective.encoder, ConditionConfig(mode="text"), 100)
    assert torch.equal(eps_objective.target(z0, eps, t), eps)


def test_min_snr_weights_are_hand_computed_and_scale_each_sample(parts):
    """min(SNR, gamma) / SNR for eps, / (SNR + 1) for v, SNR = abar / (1 - abar) from the hand-built betas."""
    clap_dir, vae_dir, _ = parts
    vae, encoder = AutoencoderKL.from_pretrained(vae_dir), resolve_encoder(str(clap_dir))
    abar = np.cumprod(1.0 - np.linspace(np.sqrt(0.0015), np.sqrt(0.0195), 1000, dtype=np.float64) ** 2)
    t = torch.tensor([0, 100, 300, 999])
    snr = abar[t.numpy()] / (1 - abar[t.numpy()])
    for prediction_type, divisor in (("epsilon", snr), ("v_prediction", snr + 1)):
        objective = LatentDiffusionObjective(vae, encoder, ConditionConfig(mode="text"), 100,
                                             prediction_type=prediction_type, snr_gamma=5.0)
        assert np.allclose(objective.loss_weights(t).numpy(), np.minimum(snr, 5.0) / divisor, rtol=1e-5)
    assert snr[0] > 5 > snr[-1]  # both branches of the min are exercised

    seen = {}

    class ZeroUnet(torch.nn.Module):
        def forward(self, sample, timestep, encoder_hidden_states=None, class_labels=None):
            seen["t"] = timestep
            return type("Out", (), {"sample": torch.zeros_like(sample)})()

    plain = LatentDiffusionObjective(vae, encoder, ConditionConfig(mode="text"), 100, "v_prediction")
    weighted = LatentDiffusionObjective(vae, encoder, ConditionConfig(mode="text"), 100, "v_prediction", 5.0)
    features = plain.encode(torch.randn(1, 16000) * 0.1, ["siren and then knock"])
    torch.manual_seed(3)
    unweighted_loss = plain.loss(ZeroUnet(), features)["mse_loss"]
    torch.manual_seed(3)  # the same latent sample, noise and timestep
    weighted_loss = weighted.loss(ZeroUnet(), features)["mse_loss"]
    a = abar[int(seen["t"])]
    assert float(weighted_loss) == pytest.approx(float(unweighted_loss) * min(a / (1 - a), 5.0) / (a / (1 - a) + 1),
                                                 rel=1e-5)
    with pytest.raises(DataError, match="model.snr_gamma: 0.0 must be positive"):
        LdmModelConfig(snr_gamma=0.0)


def test_standardised_condition_projection_centres_training_conditions(sections, tmp_path):
    cached = {"cache": True, "cache_dir": str(tmp_path / "cache")}
    training = AudioLdmTraining(config(sections(model={"standardise_condition": True}, data=cached)))
    # independently: every training clip's text and audio embedding through the projection, by hand in numpy
    features = torch.load(tmp_path / "cache" / "features.pt")["features"]
    embeds = np.concatenate([features["text_embeds"].numpy(), features["audio_embeds"].numpy()]).astype(np.float64)
    layer = training.unet.class_embedding
    projected = embeds @ layer.weight.detach().numpy().T.astype(np.float64) + layer.bias.detach().numpy()
    assert np.abs(projected.mean(0)).max() < 0.05 and projected.std() == pytest.approx(1.0, abs=0.05)
    fresh = AudioLdmTraining(config(sections("plain", data=cached)))  # default init: the same clips enter much weaker
    weight = fresh.unet.class_embedding.weight.detach().numpy()
    assert (embeds @ weight.T).std(0).mean() < 0.2
    tiny_unet(WIDTH).save_pretrained(tmp_path / "trained_unet")
    with pytest.raises(DataError, match="standardise_condition initialises a fresh UNet"):
        AudioLdmTraining(config(sections("loaded", model={"standardise_condition": True,
                                                          "unet": str(tmp_path / "trained_unet")})))


def test_a_v_prediction_run_ships_a_v_prediction_sampler(sections, tmp_path):
    from train_audioldm import main

    path = write_config(tmp_path / "run.yaml", sections("v", model={"prediction_type": "v_prediction"}))
    main(["--cond", "tclap", "--config", str(path)])
    pipe = load_pipeline(tmp_path / "v" / "pipeline")
    assert pipe.scheduler.config.prediction_type == "v_prediction"
    assert "val/v_mse" in {r["name"] for r in csv.DictReader(open(tmp_path / "v" / "metrics.csv"))}
    with pytest.raises(DataError, match="model.prediction_type: 'x0' is not one of epsilon, v_prediction"):
        config(sections(model={"prediction_type": "x0"}))


def test_train_audioldm_end_to_end_reloads_and_generates(sections, tmp_path):
    from train_audioldm import main

    path = write_config(tmp_path / "run.yaml", sections(
        "runs/ldm_{cond}", samples={"prompts": ["siren and then knock"]}, train={"ema_decay": 0.9}))
    main(["--cond", "tclap", "--config", str(path)])
    out = tmp_path / "runs" / "ldm_tclap"
    pipe = load_pipeline(out / "pipeline")
    audio = generate(pipe, ["knock and then siren"], seconds=1.0, steps=2, seed=0)
    assert audio.shape == (1, 16000) and np.isfinite(audio).all()
    final = load_file(out / "final" / "diffusion_pytorch_model.safetensors")  # the EMA UNet
    for name, value in load_file(out / "pipeline" / "unet" / "diffusion_pytorch_model.safetensors").items():
        assert torch.equal(value, final[name]), name
    assert (out / "samples" / "step-2" / "00-siren-and-then-knock.wav").exists()
    assert (out / "samples" / "step-2" / "00-siren-and-then-knock.png").exists()
    names = {r["name"] for r in csv.DictReader(open(out / "metrics.csv"))}
    assert {"loss", "mse_loss", "val/eps_mse"} <= names
    assert json.loads((out / "pipeline" / "audioldm_provenance.json").read_text())["config"]["model"]["cond"] == "tclap"


def test_cache_holds_the_posterior_and_caption_embedding_of_each_clip(sections, parts, mixup_dir, tmp_path):
    clap_dir, vae_dir, _ = parts
    cfg = config(sections(data={"cache": True, "cache_dir": str(tmp_path / "cache")},
                          condition={"mode": "text"}, train={"steps": 1}))
    run(cfg)  # trains from the cache
    stored = torch.load(tmp_path / "cache" / "features.pt")
    first = next(r for r in read_manifest(mixup_dir / MANIFEST) if r["split"] == "train")
    assert stored["meta"]["clips"][0] == first["id"] and set(stored["features"]) == {"latent_params", "text_embeds"}
    # independently: decode the file, first second, AudioLDM log-mel, VAE posterior; caption through the encoder
    audio = torch.from_numpy(load_audio(mixup_dir / first["audio"], 16000)[:16000])[None]
    vae = AutoencoderKL.from_pretrained(vae_dir)
    with torch.no_grad():
        params = vae.encode(AudioLdmMel()(audio)[:, None, :100]).latent_dist.parameters
    assert torch.allclose(stored["features"]["latent_params"][0], params[0], atol=1e-5)
    expected_text = resolve_encoder(str(clap_dir)).text_embeds([first["caption"]])[0]
    assert torch.allclose(stored["features"]["text_embeds"][0], expected_text, atol=1e-6)
    before = (tmp_path / "cache" / "features.pt").stat().st_mtime_ns
    AudioLdmTraining(config(sections("again", data={"cache": True, "cache_dir": str(tmp_path / "cache")},
                                     condition={"mode": "text"})))
    assert (tmp_path / "cache" / "features.pt").stat().st_mtime_ns == before  # same settings: reused


def test_caption_repeats_draws_each_manifest_clip_that_many_times_per_epoch(sections, mixup_dir, tmp_path):
    train_rows = [r for r in read_manifest(mixup_dir / MANIFEST) if r["split"] == "train"]
    manifest = tmp_path / "singles.jsonl"
    manifest.write_text("".join(json.dumps({"id": f"s{i}", "audio": str(mixup_dir / r["audio"]),
                                            "caption": f"single {i}"}) + "\n" for i, r in enumerate(train_rows[:2])))
    for cache in (False, True):
        data = {"captions": [str(manifest)], "caption_repeats": 3, "cache": cache,
                "cache_dir": str(tmp_path / "cache")}
        epoch = AudioLdmTraining(config(sections(f"run{cache}", data=data, condition={"mode": "text"}))).loader.dataset
        assert len(epoch) == 2 * 3 + len(train_rows)
    # uncached items carry their captions: each manifest clip three times, each mixed-up clip once
    counts = Counter(epoch_item["caption"] for epoch_item in
                     AudioLdmTraining(config(sections("count", data={"captions": [str(manifest)], "caption_repeats": 3},
                                                      condition={"mode": "text"}))).loader.dataset)
    assert counts["single 0"] == counts["single 1"] == 3
    assert sum(counts.values()) - 6 == len(train_rows)
    for bad in (0, 1.5):
        with pytest.raises(DataError, match=f"data.caption_repeats: {bad} must be a whole number >= 1"):
            config(sections(data={"caption_repeats": bad}))


def test_resume_after_a_crash_equals_an_uninterrupted_run(sections):
    """Crash in step 5 (after checkpoint-4), resume: steps 5-6 cross into the second epoch (5 batches each)."""
    steps = {"steps": 6, "checkpoint_every": 2, "validate_every": 100, "ema_decay": 0.9}
    condition = {"mode": "mix", "audio_probability": 0.5, "cfg_drop": 0.5}
    straight = run(config(sections("straight", condition=condition, train=steps)))
    crashing = config(sections("crashed", condition=condition, train=steps))
    trainer = make_trainer(crashing, AudioLdmTraining(crashing))
    calls, loss = {"n": 0}, trainer.parts.loss

    def crash_in_step_5(unet, batch):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt("simulated kill")
        return loss(unet, batch)

    trainer.parts.loss = crash_in_step_5
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    resumed = run(crashing, resume="latest")
    a = load_file(straight / "unet" / "diffusion_pytorch_model.safetensors")
    b = load_file(resumed / "unet" / "diffusion_pytorch_model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


class _NoMsclap:
    def __getattr__(self, name):
        raise AssertionError("msclap was used before the refusal")


def test_bad_input_is_refused_before_training(sections, parts, tmp_path, capsys, monkeypatch):
    from train_audioldm import main

    path = write_config(tmp_path / "run.yaml", sections())
    with pytest.raises(SystemExit):
        main(["--cond", "laion", "--config", str(path)])
    assert "--cond 'laion': expected one of clap, tclap, msclap or a CLAP directory path" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "msclap", _NoMsclap())  # building msclap's CLAP would fetch its weights
    with pytest.raises(SystemExit):
        main(["--cond", "msclap", "--config", str(path)])
    assert "--cond msclap cannot train an AudioLDM" in capsys.readouterr().err
    with pytest.raises(DataError, match=re.escape(f"model.vae: cannot load a VAE from '{tmp_path / 'no_vae'}'")):
        run(config(sections(model={"vae": str(tmp_path / "no_vae")})))
    tiny_unet(WIDTH // 2).save_pretrained(tmp_path / "narrow_unet")
    with pytest.raises(DataError, match="expects 16-d .* gives 32-d"):
        run(config(sections(model={"unet": str(tmp_path / "narrow_unet")})))
    with pytest.raises(DataError, match="condition.mode: 'both'"):
        config(sections(condition={"mode": "both"}))
    assert not (tmp_path / "run").exists()  # nothing was written


def test_a_pipelines_text_tower_conditions_text_only_training(sections, parts, tmp_path):
    from audioldm_cond.pipeline import assemble_pipeline, audioldm_scheduler, save_pipeline, tiny_vae
    from audioldm_cond.vocoder import GriffinLimVocoder

    encoder = resolve_encoder(str(parts[0]))
    pipeline_dir = save_pipeline(assemble_pipeline(encoder.text_encoder, encoder.tokenizer, tiny_vae(),
                                                   tiny_unet(WIDTH), GriffinLimVocoder(), audioldm_scheduler()),
                                 tmp_path / "pipeline")
    with pytest.raises(DataError, match="condition.mode 'mix' needs audio embeddings.*text tower"):
        AudioLdmTraining(config(sections("mixed", model={"tclap": str(pipeline_dir)})))
    run(config(sections("text", model={"tclap": str(pipeline_dir)}, condition={"mode": "text"})))
    provenance = json.loads((tmp_path / "text" / "pipeline" / "audioldm_provenance.json").read_text())
    assert provenance["config"]["model"]["tclap"] == str(pipeline_dir)
    trained = load_pipeline(tmp_path / "text" / "pipeline")
    assert torch.equal(trained.text_encoder.text_projection.linear1.weight,
                       encoder.text_encoder.text_projection.linear1.weight)


def test_configs_parse_and_paper_scratch_unet_has_audioldm_s_shapes():
    offline = read_run_config(LdmRunConfig, ROOT / "configs/audioldm/offline.yaml", [])
    assert offline.data.mixup == "results/offline/mixup_ldm" and offline.train.output_dir.endswith("{cond}")
    assert offline.condition.p_audio == 0 and offline.model.prediction_type == "v_prediction"
    unet = build_unet(offline.model, width=128, latent_channels=8, seed=0)
    assert unet.config.down_block_types[-1] == "CrossAttnDownBlock2D"  # attention at the lowest level only
    assert set(unet.config.down_block_types[:-1]) == {"DownBlock2D"}
    out = unet(torch.zeros(1, 8, 50, 8), 10, encoder_hidden_states=None, class_labels=torch.zeros(1, 128)).sample
    assert out.shape == (1, 8, 50, 8)  # a 4-s clip's latents from the 8x VAE
    paper = read_run_config(LdmRunConfig, ROOT / "configs/audioldm/paper.yaml", ["model.unet=scratch"])
    assert (paper.train.lr, paper.train.ema_decay, paper.condition.cfg_drop) == (1e-4, 0.9999, 0.1)
    with init_empty_weights():
        unet = build_unet(paper.model, width=512, latent_channels=8, seed=0)
    assert isinstance(unet, UNet2DConditionModel)
    assert tuple(unet.config.block_out_channels) == (128, 256, 384, 640)
    assert unet.config.in_channels == unet.config.out_channels == 8
    assert unet.config.down_block_types[0] == "DownBlock2D" and unet.config.up_block_types[-1] == "UpBlock2D"
    gpu = read_run_config(LdmRunConfig, ROOT / "configs/audioldm/offline_gpu.yaml", [])
    assert gpu.model.prediction_type == "v_prediction" and gpu.train.mixed_precision == "bf16"
    unet = build_unet(gpu.model, width=128, latent_channels=8, seed=0)  # the offline CLAPs' width
    assert 8e6 < sum(p.numel() for p in unet.parameters()) < 1e7
    out = unet(torch.zeros(1, 8, 100, 16), 10, encoder_hidden_states=None, class_labels=torch.zeros(1, 128)).sample
    assert out.shape == (1, 8, 100, 16)  # a 4-s clip's latents pass the four levels


@pytest.mark.slow
def test_offline_chain_vae_then_unet_then_pipeline(parts, mixup_dir, tmp_path):
    """train_vae.py, then train_audioldm.py on its VAE from a cache, then the saved pipeline generates."""
    from train_audioldm import main as train_audioldm
    from train_vae import main as train_vae

    clap_dir, _, vocoder_dir = parts
    vae_config = write_config(tmp_path / "vae.yaml", {
        "model": {"init": "tiny", "train_frames": 32, "kl_weight": 1e-4, "scale_clips": 8},
        "data": {"mixup": str(mixup_dir), "seconds": 1.0, "val_clips": 4},
        "train": {"output_dir": str(tmp_path / "vae"), "steps": 3, "batch_size": 4, "lr": 1e-3, "warmup_steps": 1,
                  "checkpoint_every": 3, "validate_every": 3, "log_every": 1}})
    train_vae(["--config", str(vae_config)])
    ldm_config = write_config(tmp_path / "ldm.yaml", ldm_sections(
        tmp_path / "ldm", mixup_dir, clap_dir, tmp_path / "vae" / "final", vocoder_dir, data={"cache": True},
        samples={"prompts": ["knock followed by siren"]}, train={"steps": 3, "checkpoint_every": 3,
                                                                 "validate_every": 3}))
    train_audioldm(["--cond", str(clap_dir), "--config", str(ldm_config)])
    pipe = load_pipeline(tmp_path / "ldm" / "pipeline")
    trained_vae = AutoencoderKL.from_pretrained(tmp_path / "vae" / "final")
    assert pipe.vae.config.scaling_factor == pytest.approx(trained_vae.config.scaling_factor)
    assert pipe.vae.config.scaling_factor != pytest.approx(AutoencoderKL().config.scaling_factor)
    audio = generate(pipe, ["siren followed by knock", "knock followed by siren"], seconds=1.0, steps=3, seed=1)
    assert audio.shape == (2, 16000) and np.isfinite(audio).all() and audio.std() > 0
    assert (tmp_path / "ldm" / "cache" / "features.pt").exists()
