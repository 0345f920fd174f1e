"""AudioLDM as a diffusers pipeline directory: tiny offline parts, assembly, loading, saving, generation.

This is the one module that touches `AudioLDMPipeline` (deprecated in diffusers after 0.33, still
shipped): if it goes away, only this file changes. A pipeline directory is what
`AudioLDMPipeline.save_pretrained` writes: one subfolder per component. The real parts come from
`cvssp/audioldm-s-full-v2` (UNet 128-640 channels, VAE with 8 latent channels at 1/4 of time and
mel, HiFi-GAN vocoder); the offline world uses `tiny_unet` / `tiny_vae` with the same layout and
the weight-free `GriffinLimVocoder`. The text encoder is always a CLAP text tower
(`ClapTextModelWithProjection`) whose projection width must equal the UNet's condition width.
"""
from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path

import numpy as np
import torch
from diffusers import AudioLDMPipeline, AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from transformers import AutoTokenizer, ClapTextModelWithProjection, SpeechT5HifiGan

from audioldm_cond.clip_data import mel_image, vae_downsampling
from audioldm_cond.encoders import check_unet_width, is_hub_id
from audioldm_cond.mel import AudioLdmMel
from audioldm_cond.vocoder import GriffinLimVocoder
from tclap.errors import DataError

AUDIOLDM_HUB = "cvssp/audioldm-s-full-v2"
GRIFFIN_LIM = "griffin-lim"  # `load_component("vocoder", GRIFFIN_LIM)`: the weight-free vocoder, default settings
# The file each component's subfolder must hold; also the pipeline's component names.
VOCODER_MODULE = "griffin_lim_vocoder"  # the vocoder's code inside a pipeline folder: vocoder/<this>.py
COMPONENT_FILES = {"text_encoder": "config.json", "tokenizer": "tokenizer_config.json", "vae": "config.json",
                   "unet": "config.json", "scheduler": "scheduler_config.json", "vocoder": "config.json"}
_LOADERS = {"text_encoder": ClapTextModelWithProjection, "tokenizer": AutoTokenizer, "vae": AutoencoderKL,
            "unet": UNet2DConditionModel, "scheduler": DDIMScheduler}


def tiny_unet(width: int, latent_channels: int = 8) -> UNet2DConditionModel:
    """A small UNet laid out like AudioLDM's: the CLAP embedding enters as a projected class embedding
    concatenated to the time embedding (FiLM), and there is no text sequence to cross-attend to.

    As in `cvssp/audioldm-s-full-v2`, the deeper blocks are CrossAttn blocks whose cross-attention width
    equals the block width: the pipeline passes `encoder_hidden_states=None`, so they attend to the
    block's own features (self-attention).

    Args:
        width: condition embedding width (the CLAP projection dim).
        latent_channels: VAE latent channels (AudioLDM: 8).
    """
    channels = (16, 32)
    return UNet2DConditionModel(
        sample_size=128,  # latent frames of the default clip: 128 * 4 mel frames * 10 ms = 5.12 s
        in_channels=latent_channels, out_channels=latent_channels,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=channels, cross_attention_dim=channels, layers_per_block=1, norm_num_groups=8,
        attention_head_dim=4, class_embed_type="simple_projection", projection_class_embeddings_input_dim=width,
        class_embeddings_concat=True)


def tiny_vae(latent_channels: int = 8, downsampling: int = 4) -> AutoencoderKL:
    """A small mel VAE laid out like AudioLDM's: a (1, T, 64) log-mel image in, latents at 1/`downsampling`
    of time and mel.

    Args:
        latent_channels: latent channels (AudioLDM: 8).
        downsampling: 4 (AudioLDM's: 2 downsamplings) or 8 (3; the offline world's generator default,
            whose 8x smaller latents make each UNet step several times cheaper, see
            `benchmarks/unet_layouts.py`). AudioLDMPipeline derives the factor from the block count.
    """
    if downsampling not in (4, 8):
        raise DataError(f"VAE downsampling {downsampling}: expected 4 or 8")
    levels = downsampling.bit_length()  # one more block than downsamplings
    return AutoencoderKL(in_channels=1, out_channels=1, latent_channels=latent_channels,
                         down_block_types=("DownEncoderBlock2D",) * levels,
                         up_block_types=("UpDecoderBlock2D",) * levels,
                         block_out_channels=(16,) + (32,) * (levels - 1), layers_per_block=1, norm_num_groups=8)


def audioldm_scheduler(prediction_type: str = "epsilon") -> DDIMScheduler:
    """AudioLDM's noise schedule (its training betas) with the hub repo's DDIM sampling settings.

    Args:
        prediction_type: the UNet's output: "epsilon" (AudioLDM's) or "v_prediction".
    """
    return DDIMScheduler(num_train_timesteps=1000, beta_start=0.0015, beta_end=0.0195, beta_schedule="scaled_linear",
                         clip_sample=False, set_alpha_to_one=False, steps_offset=1, prediction_type=prediction_type)


def assemble_pipeline(text_encoder: ClapTextModelWithProjection, tokenizer, vae: AutoencoderKL,
                      unet: UNet2DConditionModel, vocoder: torch.nn.Module, scheduler) -> AudioLDMPipeline:
    """An AudioLDMPipeline from parts, after checking that they fit together.

    Args:
        text_encoder: CLAP text tower; its `projection_dim` is the condition width.
        tokenizer: the CLAP's tokenizer.
        vae: mel VAE.
        unet: denoiser conditioned on `projection_dim`-wide embeddings.
        vocoder: SpeechT5HifiGan or GriffinLimVocoder.
        scheduler: a diffusers scheduler (see `audioldm_scheduler`).
    """
    check_unet_width(unet, text_encoder.config.projection_dim)
    if not vae.config.latent_channels == unet.config.in_channels == unet.config.out_channels:
        raise DataError(f"VAE has {vae.config.latent_channels} latent channels but the UNet takes "
                        f"{unet.config.in_channels} and gives {unet.config.out_channels}")
    return AudioLDMPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                            scheduler=scheduler, vocoder=vocoder)


def load_component(kind: str, name_or_dir: str | Path):
    """One pipeline part from a hub pipeline repo, a pipeline directory, or the part's own directory.

    Hub ids (e.g. `AUDIOLDM_HUB`) are read from the `kind` subfolder. A local directory is used through
    its `kind` subfolder when it has one (a saved pipeline), else as the part itself (a UNet saved with
    `save_pretrained`, a CLAP checkpoint for `text_encoder` / `tokenizer`). `("vocoder", GRIFFIN_LIM)`
    needs no files.

    Args:
        kind: one of `COMPONENT_FILES`.
        name_or_dir: hub id or local directory.
    """
    if kind not in COMPONENT_FILES:
        raise DataError(f"component {kind!r}: expected one of {', '.join(COMPONENT_FILES)}")
    name_or_dir = str(name_or_dir)
    if kind == "vocoder" and name_or_dir == GRIFFIN_LIM:
        return GriffinLimVocoder()
    if is_hub_id(name_or_dir):
        source, kwargs = name_or_dir, {"subfolder": kind}
    else:
        root = Path(name_or_dir).expanduser()
        folder = root / kind if (root / kind).is_dir() else root
        if not (folder / COMPONENT_FILES[kind]).is_file():
            raise DataError(f"{kind}: no {COMPONENT_FILES[kind]} in {folder}")
        source, kwargs = str(folder), {}
    if kind == "vocoder":
        config = GriffinLimVocoder.load_config(source, **kwargs)
        loader = GriffinLimVocoder if config.get("_class_name") == GriffinLimVocoder.__name__ else SpeechT5HifiGan
    else:
        loader = _LOADERS[kind]
    return loader.from_pretrained(source, **kwargs)


def save_pipeline(pipe: AudioLDMPipeline, out_dir: str | Path) -> Path:
    """Write the pipeline directory (safetensors weights, one subfolder per component).

    A Griffin-Lim vocoder goes with its code: `audioldm_cond/vocoder.py` is copied to
    `vocoder/griffin_lim_vocoder.py` and `model_index.json` names it, diffusers' layout for community
    components, so `DiffusionPipeline.from_pretrained(out_dir, trust_remote_code=True)` needs nothing
    of ours.

    Args:
        pipe: the pipeline.
        out_dir: where to write it.
    """
    out_dir = Path(out_dir)
    pipe.save_pretrained(out_dir, safe_serialization=True)
    if isinstance(pipe.vocoder, GriffinLimVocoder):
        shutil.copyfile(inspect.getfile(GriffinLimVocoder), out_dir / "vocoder" / f"{VOCODER_MODULE}.py")
        index_path = out_dir / "model_index.json"
        index = json.loads(index_path.read_text())
        index["vocoder"] = [VOCODER_MODULE, GriffinLimVocoder.__name__]
        index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return out_dir


def replace_vae_decoder(pipe: AudioLDMPipeline, vae: AutoencoderKL) -> AudioLDMPipeline:
    """The pipeline with `vae` in place of its VAE, where `vae` encodes exactly as the old one: same encoder
    and `quant_conv` weights, same `scaling_factor` (a decoder fine-tuned by `train_vae.py` with
    `model.trained: decoder`), so latents mean what the UNet was trained on and only decoding changes.

    Raises:
        DataError: naming the first encoder tensor or config value that differs.
    """
    old, new = pipe.vae.state_dict(), vae.state_dict()
    for key in [k for k in old if k.startswith(("encoder.", "quant_conv."))]:
        if key not in new or not torch.equal(old[key].cpu(), new[key].cpu()):
            raise DataError(f"vae: its {key} differs from the pipeline's; only a VAE whose decoder alone was "
                            "fine-tuned (model.trained: decoder) keeps the UNet's latents")
    if vae.config.scaling_factor != pipe.vae.config.scaling_factor:
        raise DataError(f"vae: scaling_factor {vae.config.scaling_factor} differs from the pipeline's "
                        f"{pipe.vae.config.scaling_factor}")
    if (vae.device, vae.dtype) != (pipe.vae.device, pipe.vae.dtype):
        vae = vae.to(device=pipe.vae.device, dtype=pipe.vae.dtype)
    pipe.register_modules(vae=vae)
    return pipe


def load_pipeline(name_or_dir: str | Path) -> AudioLDMPipeline:
    """A pipeline from a directory written by `save_pipeline` (checked for all parts first) or a hub id.

    A folder whose vocoder is our Griffin-Lim (`vocoder/griffin_lim_vocoder.py`) is assembled from its
    parts with this package's class, so no code from the folder runs; stock diffusers loads the same
    folder with `DiffusionPipeline.from_pretrained(DIR, trust_remote_code=True)`.

    Args:
        name_or_dir: pipeline directory, or a hub id such as `AUDIOLDM_HUB`.
    """
    name_or_dir = str(name_or_dir)
    if not is_hub_id(name_or_dir):
        root = Path(name_or_dir).expanduser()
        if not (root / "model_index.json").is_file():
            raise DataError(f"{root}: not a pipeline directory (no model_index.json)")
        missing = [f"{kind}/{name}" for kind, name in COMPONENT_FILES.items() if not (root / kind / name).is_file()]
        if missing:
            raise DataError(f"{root}: pipeline directory lacks {', '.join(missing)}")
        if json.loads((root / "model_index.json").read_text()).get("vocoder", [None])[0] == VOCODER_MODULE:
            # assembled from its parts with our own vocoder class: no code from the folder is run
            return AudioLDMPipeline(**{kind: load_component(kind, root) for kind in COMPONENT_FILES})
    return AudioLDMPipeline.from_pretrained(name_or_dir)


def shortest_clip_seconds(vocoder_config: dict, vae_config: dict) -> float:
    """The shortest clip an AudioLDM pipeline makes, in seconds: one latent frame's worth of audio.

    diffusers' `AudioLDMPipeline.check_inputs` refuses `audio_length_in_s` below
    prod(vocoder upsample_rates) / sampling_rate (seconds per mel frame) times the VAE's scale factor
    2 ** (len(block_out_channels) - 1) (mel frames per latent frame); this computes the same bound from
    the components' configs, so it can be checked before any weights load.
    """
    seconds_per_frame = float(np.prod(vocoder_config["upsample_rates"])) / vocoder_config["sampling_rate"]
    return seconds_per_frame * 2 ** (len(vae_config["block_out_channels"]) - 1)


def check_clip_seconds(name_or_dir: str | Path, seconds: float) -> None:
    """A DataError naming the minimum when a local pipeline cannot make `seconds`-long clips.

    Hub ids are not read here (their configs may not be on disk); diffusers checks those on the call.
    """
    if is_hub_id(str(name_or_dir)):
        return
    root = Path(name_or_dir).expanduser()
    try:
        configs = [json.loads((root / part / "config.json").read_text()) for part in ("vocoder", "vae")]
    except (OSError, ValueError) as error:
        raise DataError(f"{root}: cannot read the vocoder and VAE configs ({error})") from None
    shortest = shortest_clip_seconds(*configs)
    if seconds < shortest:
        raise DataError(f"--seconds {seconds:g}: {root} makes clips of at least {shortest:g} s "
                        f"(one latent frame)")


def generate(pipe: AudioLDMPipeline, prompts: list[str], seconds: float, steps: int = 10, guidance_scale: float = 2.5,
             seed: int = 0) -> np.ndarray:
    """Waveforms for captions, reproducible across devices (noise drawn on the CPU from `seed`).

    Args:
        pipe: the pipeline.
        prompts: captions, one clip each.
        seconds: clip length.
        steps: denoising steps.
        guidance_scale: classifier-free guidance weight (> 1 also runs the "" condition).
        seed: noise seed.

    Returns:
        (len(prompts), seconds * sampling_rate) float32 array at `pipe.vocoder.config.sampling_rate`.
    """
    pipe.set_progress_bar_config(disable=True)
    generator = torch.Generator("cpu").manual_seed(seed)
    return pipe(prompts, audio_length_in_s=seconds, num_inference_steps=steps, guidance_scale=guidance_scale,
                generator=generator).audios


@torch.no_grad()
def clip_latents(pipe: AudioLDMPipeline, audio: torch.Tensor) -> torch.Tensor:
    """(B, L) 16-kHz clips -> the VAE posterior means of their log-mels (not yet scaled by the VAE's
    scaling factor), the clips cut to whole VAE blocks of mel frames.

    Args:
        pipe: the pipeline whose VAE encodes.
        audio: float waveforms.
    """
    mel, blocks = AudioLdmMel(), vae_downsampling(pipe.vae)
    frames = audio.shape[-1] // mel.config.hop_length // blocks * blocks
    if frames < blocks:
        raise DataError(f"audio: {audio.shape[-1]} samples is shorter than one VAE block of mel frames")
    image = mel_image(mel, audio.float(), frames).to(device=pipe.vae.device, dtype=pipe.vae.dtype)
    return pipe.vae.encode(image).latent_dist.mean


@torch.no_grad()
def resynthesise(pipe: AudioLDMPipeline, audio: np.ndarray) -> np.ndarray:
    """A 16-kHz clip through the mel front end, the pipeline's VAE (posterior mean) and its vocoder: what
    a perfect UNet would give back, so the ceiling of any clip generated with this VAE and vocoder.

    Args:
        audio: (L,) float waveform at 16 kHz; cut to whole VAE blocks of mel frames.
    """
    latents = clip_latents(pipe, torch.from_numpy(np.asarray(audio, dtype=np.float32))[None])
    return pipe.mel_spectrogram_to_waveform(pipe.vae.decode(latents).sample)[0].float().cpu().numpy()
