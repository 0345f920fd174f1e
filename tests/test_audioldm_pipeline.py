"""AudioLDM pipeline assembly: tiny parts, generation, save / reload, component loading, fit checks."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from transformers import ClapTextModelWithProjection

from audioldm_cond.encoders import PipelineTextConditionEncoder, resolve_encoder
from audioldm_cond.pipeline import (GRIFFIN_LIM, assemble_pipeline, audioldm_scheduler, generate, load_component,
                                    load_pipeline, resynthesise, save_pipeline, tiny_unet, tiny_vae)
from audioldm_cond.vocoder import GriffinLimVocoder
from tclap.errors import DataError
from tclap.model import ModelConfig, build_tiny, save_clap

ROOT = Path(__file__).resolve().parent.parent
CAPTIONS = ["a dog barks then a bell rings", "rain falls on a roof", "a door slams followed by footsteps"]


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    model, processor = build_tiny(ModelConfig(projection_dim=32, vocab_size=300), CAPTIONS, seed=0)
    return resolve_encoder(str(save_clap(model, processor, tmp_path_factory.mktemp("clap") / "tiny", {})))


@pytest.fixture(scope="module")
def pipe(encoder):
    torch.manual_seed(0)
    return assemble_pipeline(encoder.text_encoder, encoder.tokenizer, tiny_vae(), tiny_unet(encoder.width),
                             GriffinLimVocoder(n_iter=4), audioldm_scheduler())


@pytest.fixture(scope="module")
def saved(pipe, tmp_path_factory):
    return save_pipeline(pipe, tmp_path_factory.mktemp("pipeline") / "tiny")


def test_generates_saves_and_reloads_to_the_same_waveform(pipe, saved):
    audio = generate(pipe, CAPTIONS[:1], seconds=1.0, steps=2, seed=3)
    assert audio.shape == (1, 16000) and np.isfinite(audio).all() and audio.std() > 0
    assert json.loads((saved / "model_index.json").read_text())["vocoder"] == ["griffin_lim_vocoder",
                                                                               "GriffinLimVocoder"]
    reloaded = load_pipeline(saved)
    assert isinstance(reloaded.vocoder, GriffinLimVocoder) and reloaded.vocoder.config.n_iter == 4
    assert np.allclose(generate(reloaded, CAPTIONS[:1], seconds=1.0, steps=2, seed=3), audio, atol=1e-6)
    assert not np.allclose(generate(reloaded, CAPTIONS[:1], seconds=1.0, steps=2, seed=4), audio, atol=1e-6)


def test_a_saved_pipeline_loads_with_plain_diffusers_and_none_of_our_code(pipe, saved, tmp_path):
    """A fresh interpreter, outside the repository, that never imports tclap or audioldm_cond."""
    script = f"""
import sys
import numpy as np
import torch
from diffusers import DiffusionPipeline
pipe = DiffusionPipeline.from_pretrained({str(saved)!r}, trust_remote_code=True)
pipe.set_progress_bar_config(disable=True)
audio = pipe({CAPTIONS[0]!r}, audio_length_in_s=1.0, num_inference_steps=2,
             generator=torch.Generator("cpu").manual_seed(3)).audios
np.save({str(tmp_path / "audio.npy")!r}, audio)
ours = sorted(m for m in sys.modules if m.split(".")[0] in ("tclap", "audioldm_cond", "eval", "demo"))
print(type(pipe).__name__, type(pipe.vocoder).__module__, ours)
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    name, module, ours = result.stdout.strip().splitlines()[-1].split(" ", 2)
    assert name == "AudioLDMPipeline" and module.endswith("griffin_lim_vocoder") and ours == "[]"
    ours = generate(load_pipeline(saved), CAPTIONS[:1], seconds=1.0, steps=2, seed=3)
    assert np.allclose(np.load(tmp_path / "audio.npy"), ours, atol=1e-5)  # the same audio as through our loader


def test_the_unet_is_conditioned_on_the_encoder_text_embeds_and_the_empty_caption(pipe, encoder):
    """With guidance, _encode_prompt stacks the "" (null) condition over the captions' embeddings."""
    embeds = pipe._encode_prompt(CAPTIONS, torch.device("cpu"), 1, True)
    expected = torch.cat([encoder.text_embeds([""] * 3), encoder.text_embeds(CAPTIONS)])
    assert torch.allclose(embeds, expected, atol=1e-6)


def test_missing_component_is_named_before_loading(pipe, tmp_path):
    path = save_pipeline(pipe, tmp_path / "pipeline")
    shutil.rmtree(path / "vae")
    with pytest.raises(DataError, match="lacks vae/config.json"):
        load_pipeline(path)
    with pytest.raises(DataError, match="no model_index.json"):
        load_pipeline(tmp_path)


def test_width_or_latent_mismatch_is_refused(encoder):
    parts = dict(text_encoder=encoder.text_encoder, tokenizer=encoder.tokenizer, vocoder=GriffinLimVocoder(),
                 scheduler=audioldm_scheduler())
    with pytest.raises(DataError, match="expects 16-d .* gives 32-d"):
        assemble_pipeline(vae=tiny_vae(), unet=tiny_unet(16), **parts)
    with pytest.raises(DataError, match="4 latent channels"):
        assemble_pipeline(vae=tiny_vae(latent_channels=4), unet=tiny_unet(32), **parts)


def test_load_component_from_a_pipeline_directory_or_a_part_directory(saved, encoder, tmp_path):
    expected = {"unet": UNet2DConditionModel, "vae": AutoencoderKL, "scheduler": DDIMScheduler,
                "text_encoder": ClapTextModelWithProjection, "vocoder": GriffinLimVocoder}
    for kind, cls in expected.items():
        assert isinstance(load_component(kind, saved), cls), kind
    assert load_component("tokenizer", saved)("rain").input_ids == encoder.tokenizer("rain").input_ids
    tiny_unet(32).save_pretrained(tmp_path / "unet_alone")
    assert load_component("unet", tmp_path / "unet_alone").config.projection_class_embeddings_input_dim == 32
    assert isinstance(load_component("vocoder", GRIFFIN_LIM), GriffinLimVocoder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="vae: no config.json in .*empty"):
        load_component("vae", tmp_path / "empty")
    with pytest.raises(DataError, match="'mel'"):
        load_component("mel", saved)


def test_scheduler_has_audioldm_betas():
    """scaled_linear: betas evenly spaced in sqrt between AudioLDM's linear_start and linear_end."""
    expected = np.linspace(0.0015 ** 0.5, 0.0195 ** 0.5, 1000) ** 2
    assert np.allclose(audioldm_scheduler().betas.numpy(), expected, rtol=1e-5)


def test_tiny_vae_and_unet_shapes_follow_audioldm():
    vae = tiny_vae()
    latents = vae.encode(torch.randn(1, 1, 100, 64)).latent_dist.mean  # 1 s of mel frames
    assert latents.shape == (1, 8, 25, 16)  # time and mel at 1/4
    assert vae.decode(latents).sample.shape == (1, 1, 100, 64)
    noise = tiny_unet(32)(latents, 10, encoder_hidden_states=None, class_labels=torch.randn(1, 32)).sample
    assert noise.shape == latents.shape


def test_8x_vae_gives_latents_at_an_eighth_and_the_pipeline_generates_on_them(encoder):
    vae = tiny_vae(downsampling=8)
    latents = vae.encode(torch.randn(1, 1, 400, 64)).latent_dist.mean  # 4 s of mel frames
    assert latents.shape == (1, 8, 50, 8)
    assert vae.decode(latents).sample.shape == (1, 1, 400, 64)
    torch.manual_seed(0)
    pipe = assemble_pipeline(encoder.text_encoder, encoder.tokenizer, vae, tiny_unet(encoder.width),
                             GriffinLimVocoder(n_iter=2), audioldm_scheduler())
    assert pipe.vae_scale_factor == 8
    assert generate(pipe, CAPTIONS[:1], seconds=1.0, steps=2).shape == (1, 16000)  # 100 frames, rounded up to 104
    with pytest.raises(DataError, match="VAE downsampling 2: expected 4 or 8"):
        tiny_vae(downsampling=2)


def test_a_pipeline_directory_conditions_through_its_own_text_tower(pipe, saved):
    """--cond PIPELINE_DIR: the same unit vectors the pipeline's _encode_prompt feeds its UNet; text only."""
    encoder = resolve_encoder(str(saved))
    assert isinstance(encoder, PipelineTextConditionEncoder) and encoder.width == 32
    assert not hasattr(encoder, "audio_embeds")
    expected = pipe._encode_prompt(CAPTIONS, torch.device("cpu"), 1, False)
    assert torch.allclose(encoder.text_embeds(CAPTIONS), torch.nn.functional.normalize(expected, dim=-1), atol=1e-6)
    shutil.copytree(saved, saved.parent / "no_text", ignore=shutil.ignore_patterns("text_encoder"))
    with pytest.raises(DataError, match="no_text has no text_encoder/config.json"):
        resolve_encoder(str(saved.parent / "no_text"))


def test_resynthesis_keeps_a_clips_events_and_their_order(mixup_dir):
    """A real mixed-up clip through the shipped pipeline's VAE and vocoder: the detector hears the same events in order."""
    from tclap_demo.studio import SHIPPED
    from tclap_eval.detector import EventDetector
    from tclap_eval.order import judge_clip
    from tclap.audio import load_audio
    from tclap.data.mixup import MANIFEST, read_manifest

    detector, pipe = EventDetector.load(SHIPPED / "detector.pt"), load_pipeline(SHIPPED / "tclap")
    in_order = []
    for record in [r for r in read_manifest(mixup_dir / MANIFEST) if r["split"] == "test"][:4]:
        audio = load_audio(mixup_dir / record["audio"], 16000)
        rebuilt = resynthesise(pipe, audio)
        assert rebuilt.shape == (len(audio) // 160 // 4 * 4 * 160,) and np.isfinite(rebuilt).all()
        events = [detector.classes.index(e["category"]) for e in sorted(record["events"], key=lambda e: e["onset"])]
        in_order.append(judge_clip(detector.activity(rebuilt), events).in_order)
    assert sum(in_order) >= 3
    with pytest.raises(DataError, match="shorter than one VAE block"):
        resynthesise(pipe, np.zeros(400, dtype=np.float32))


def test_a_fine_tuned_decoder_replaces_the_vae_and_changes_only_decoding(saved, tmp_path, capsys):
    """scripts/swap_vae_decoder.py: same latents (encoder untouched), the new decoder's audio, provenance kept."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("swap_vae_decoder", ROOT / "scripts" / "swap_vae_decoder.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    (saved / "audioldm_provenance.json").write_text(json.dumps({"config": {"model": {"cond": "tclap"}}}))
    original = load_pipeline(saved)
    tuned = load_component("vae", saved)
    with torch.no_grad():
        tuned.decoder.conv_out.bias.add_(1.0)  # a "fine-tuned" decoder: it decodes every latent 1.0 higher
    tuned.save_pretrained(tmp_path / "vae")
    script.main(["--vae", str(tmp_path / "vae"), "--pipeline", str(saved), "--out", str(tmp_path / "out")])
    swapped = load_pipeline(tmp_path / "out")
    latents = torch.randn(1, 8, 4, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(swapped.vae.decode(latents).sample, original.vae.decode(latents).sample + 1.0, atol=1e-5)
        mel = torch.randn(1, 1, 16, 64, generator=torch.Generator().manual_seed(1))
        assert torch.equal(swapped.vae.encode(mel).latent_dist.mean, original.vae.encode(mel).latent_dist.mean)
    provenance = json.loads((tmp_path / "out" / "audioldm_provenance.json").read_text())
    assert provenance["config"] == {"model": {"cond": "tclap"}}
    assert provenance["vae_decoder"] == {"from": str(tmp_path / "vae"), "replaced_in": str(saved)}

    retrained = tiny_vae()  # another encoder: its latents would mean something else to the UNet
    retrained.save_pretrained(tmp_path / "other_vae")
    with pytest.raises(SystemExit):
        script.main(["--vae", str(tmp_path / "other_vae"), "--pipeline", str(saved), "--out", str(tmp_path / "o2")])
    assert "vae: its encoder.conv_in.weight differs from the pipeline's" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()
    with pytest.raises(SystemExit):  # an existing folder is never written into
        script.main(["--vae", str(tmp_path / "vae"), "--pipeline", str(saved), "--out", str(tmp_path / "out")])
    assert "already exists" in capsys.readouterr().err
