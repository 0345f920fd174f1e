"""Which CLAP turns captions (and clips) into AudioLDM's condition, chosen by one `--cond` value.

AudioLDM conditions its UNet on one L2-normalised CLAP embedding per clip (text at inference; text
or audio in training). Swapping that CLAP is the experiment: the base CLAP, our T-CLAP, Microsoft
CLAP, or any CLAP checkpoint directory. Every encoder gives `text_embeds(texts)` and
`audio_embeds(waveform)` as (B, width) unit vectors; CLAP-based ones also carry the
`ClapTextModelWithProjection` and tokenizer that AudioLDMPipeline takes as its text encoder, and
their `text_embeds` is exactly what the pipeline's `_encode_prompt` feeds the UNet. A local AudioLDM
pipeline directory (a shipped one, or a downloaded `cvssp/audioldm-s-full-v2` snapshot) conditions
through its own text tower, on text only: it has no `audio_embeds`.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoTokenizer, ClapTextModelWithProjection
from transformers.utils import logging as hf_logging

from tclap.errors import DataError
from tclap.model import ClapEncoder, load_clap

DEFAULT_CLAP = "laion/clap-htsat-unfused"  # same architecture and tokenizer as AudioLDM's CLAP
CHOICES = ("clap", "tclap", "msclap")


@torch.no_grad()
def caption_embeds(text_encoder: ClapTextModelWithProjection, tokenizer, texts: list[str]) -> torch.Tensor:
    """Captions -> (B, width) unit vectors, tokenised and pooled as AudioLDMPipeline does.

    Args:
        text_encoder: a CLAP text tower (an encoder's, or a pipeline's).
        tokenizer: its tokenizer.
        texts: captions ("" is the classifier-free-guidance null condition).
    """
    tokens = tokenizer(texts, padding="max_length", max_length=tokenizer.model_max_length,
                       truncation=True, return_tensors="pt").to(text_encoder.device)
    output = text_encoder(tokens.input_ids, attention_mask=tokens.attention_mask)
    return F.normalize(output.text_embeds, dim=-1)


def text_tower(name_or_dir: str | Path) -> ClapTextModelWithProjection:
    """A full CLAP checkpoint's text tower and projection, AudioLDMPipeline's text encoder. transformers'
    load report would list every audio weight as unexpected, so it is silenced and only a missing
    text weight is an error."""
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        tower, info = ClapTextModelWithProjection.from_pretrained(str(name_or_dir), output_loading_info=True)
    finally:
        hf_logging.set_verbosity(verbosity)
    if info["missing_keys"]:
        raise DataError(f"{name_or_dir}: the CLAP checkpoint lacks text-tower weights "
                        f"{', '.join(sorted(info['missing_keys'])[:5])}")
    return tower


class ClapConditionEncoder(nn.Module):
    """A transformers CLAP checkpoint (hub id or `save_pretrained` directory) as a frozen conditioner.

    Args:
        name_or_dir: hub id or directory holding a `ClapModel` with its tokenizer and feature extractor.
    """

    def __init__(self, name_or_dir: str | Path):
        super().__init__()
        model, processor = load_clap(name_or_dir)
        self.clap = ClapEncoder(model, processor).eval()  # audio path: batched torch front end
        self.text_encoder = text_tower(name_or_dir).eval()
        self.tokenizer = processor.tokenizer
        self.width = model.config.projection_dim
        self.sample_rate = self.clap.sample_rate

    def text_embeds(self, texts: list[str]) -> torch.Tensor:
        """Captions -> (B, width) unit vectors, as AudioLDMPipeline computes them (see `caption_embeds`)."""
        return caption_embeds(self.text_encoder, self.tokenizer, texts)

    @torch.no_grad()
    def audio_embeds(self, waveform: torch.Tensor) -> torch.Tensor:
        """(B, L) clips at `sample_rate`, no longer than the CLAP window -> (B, width) unit vectors.

        Args:
            waveform: float clips; moved to the encoder's device.
        """
        return self.clap.audio_embeds(waveform.to(self.text_encoder.device))


class PipelineTextConditionEncoder(nn.Module):
    """The text tower and tokenizer of an AudioLDM pipeline directory as a frozen, text-only conditioner
    (`condition.mode: text`): a pipeline keeps no audio tower, so there is no `audio_embeds`.

    Args:
        pipeline_dir: a directory written by `AudioLDMPipeline.save_pretrained` (its `text_encoder/`
            and `tokenizer/` subfolders are read).
    """

    def __init__(self, pipeline_dir: str | Path):
        super().__init__()
        self.text_encoder = ClapTextModelWithProjection.from_pretrained(str(pipeline_dir),
                                                                        subfolder="text_encoder").eval()
        self.tokenizer = AutoTokenizer.from_pretrained(str(pipeline_dir), subfolder="tokenizer")
        self.width = self.text_encoder.config.projection_dim

    def text_embeds(self, texts: list[str]) -> torch.Tensor:
        """Captions -> (B, width) unit vectors, as AudioLDMPipeline computes them (see `caption_embeds`)."""
        return caption_embeds(self.text_encoder, self.tokenizer, texts)


class MsClapConditionEncoder:
    """Microsoft CLAP through the optional `msclap` package (no text tower for AudioLDMPipeline:
    generate with `prompt_embeds=encoder.text_embeds(...)`).

    Args:
        version: msclap weights version ("2022" or "2023"); msclap downloads them on first use.
    """

    text_encoder = None
    tokenizer = None

    def __init__(self, version: str = "2023"):
        try:
            from msclap import CLAP
        except ImportError as error:
            raise DataError("--cond msclap needs the optional `msclap` package (Microsoft CLAP): "
                            "pip install msclap") from error
        self.wrapper = CLAP(version=version, use_cuda=torch.cuda.is_available())
        self.width = self.wrapper.args.d_proj
        self.sample_rate = self.wrapper.args.sampling_rate

    def text_embeds(self, texts: list[str]) -> torch.Tensor:
        """Captions -> (B, width) unit vectors.

        Args:
            texts: captions.
        """
        return F.normalize(self.wrapper.get_text_embeddings(texts), dim=-1)

    def audio_embeds(self, waveform: torch.Tensor) -> torch.Tensor:
        """(B, L) clips at `sample_rate` -> (B, width) unit vectors.

        Args:
            waveform: float clips, as long as msclap's window (7 s for "2023").
        """
        return F.normalize(self.wrapper._get_audio_embeddings(waveform[:, None]), dim=-1)  # wants (B, 1, L)


def is_hub_id(name: str) -> bool:
    """True for an `owner/name` that is not a local path: the Hugging Face hub (or its cache) resolves it."""
    return not Path(name).expanduser().exists() and name.count("/") == 1 and not name.startswith((".", "/", "~"))


def _local_encoder(path: str | Path, what: str) -> ClapConditionEncoder | PipelineTextConditionEncoder:
    """The encoder a local directory holds: a CLAP checkpoint, or an AudioLDM pipeline's text tower."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise DataError(f"{what}: CLAP directory not found: {path}")
    if (path / "model_index.json").is_file():
        if not (path / "text_encoder" / "config.json").is_file():
            raise DataError(f"{what}: pipeline directory {path} has no text_encoder/config.json")
        return PipelineTextConditionEncoder(path)
    if not (path / "config.json").is_file():
        raise DataError(f"{what}: {path} is neither a CLAP checkpoint directory (no config.json) "
                        "nor a pipeline directory (no model_index.json)")
    return ClapConditionEncoder(path)


def resolve_encoder(cond: str, clap: str | Path = DEFAULT_CLAP, tclap: str | Path | None = None
                    ) -> ClapConditionEncoder | PipelineTextConditionEncoder | MsClapConditionEncoder:
    """The conditioning encoder a `--cond` value names.

    Args:
        cond: "clap" (the base CLAP), "tclap" (our T-CLAP), "msclap" (Microsoft CLAP), or a path to
            any CLAP checkpoint directory or AudioLDM pipeline directory (its text tower, text only).
        clap: hub id or directory used for "clap" (a local pipeline directory: its text tower).
        tclap: T-CLAP checkpoint or pipeline directory used for "tclap" (from the experiment config).
    """
    if cond == "clap":
        return ClapConditionEncoder(clap) if is_hub_id(clap) else _local_encoder(clap, "--cond clap")
    if cond == "tclap":
        if tclap is None:
            raise DataError("--cond tclap: no T-CLAP directory given (set it in the config or pass one)")
        return _local_encoder(tclap, "--cond tclap")
    if cond == "msclap":
        return MsClapConditionEncoder()
    if "/" in cond or "\\" in cond or cond.startswith((".", "~")) or Path(cond).exists():
        return _local_encoder(cond, "--cond")
    raise DataError(f"--cond {cond!r}: expected one of {', '.join(CHOICES)} or a CLAP directory path")


def check_unet_width(unet: nn.Module, width: int) -> None:
    """Fail early when a UNet was built for another embedding width than the encoder gives.

    Args:
        unet: a `UNet2DConditionModel` with `class_embed_type="simple_projection"`.
        width: the conditioning encoder's embedding width.
    """
    expected = unet.config.projection_class_embeddings_input_dim
    if expected != width:
        raise DataError(f"UNet expects {expected}-d condition embeddings (projection_class_embeddings_input_dim) "
                        f"but the encoder gives {width}-d ones: use a UNet built for this encoder")
