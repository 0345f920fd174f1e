"""Import an original LAION-CLAP `.pt` checkpoint (LAION-AI/CLAP, `laion_clap`) into Hugging Face `ClapModel` format.

Why: T-CLAP fine-tunes `transformers.ClapModel`, but many CLAP checkpoints (e.g. `630k-audioset-best.pt`,
`music_audioset_epoch_15_esc_90.14.pt`) exist only in the original layout. The `laion_clap` package cannot be
used here (it downloads roberta-base when built), so we read the raw state dict and rename it ourselves:
a list of (regex, replacement) rules, plus splitting HTSAT's fused `qkv` into query/key/value.

The conversion is strict: every original key must land on a `ClapModel` key of the same shape, and every
`ClapModel` key must be filled, except for the two short documented lists below. Anything else is an error.
"""
from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import torch
from transformers import ClapConfig, ClapModel

from tclap.errors import DataError

# Applied in order, with re.sub, to every original key (after a leading "module." is stripped).
RENAME_RULES: list[tuple[str, str]] = [
    (r"^text_branch\.", "text_model."),  # RobertaModel: same names inside
    (r"^audio_branch\.bn0\.", "audio_model.audio_encoder.batch_norm."),
    (r"^audio_branch\.", "audio_model.audio_encoder."),  # patch_embed (+ mel_conv2d, fusion_model), layers, norm
    (r"^(text|audio)_projection\.0\.", r"\1_projection.linear1."),  # nn.Sequential(Linear, act, Linear)
    (r"^(text|audio)_projection\.2\.", r"\1_projection.linear2."),
    (r"(\.blocks\.\d+)\.norm1\.", r"\1.layernorm_before."),  # Swin block
    (r"(\.blocks\.\d+)\.norm2\.", r"\1.layernorm_after."),
    (r"(\.blocks\.\d+)\.attn\.proj\.", r"\1.attention.output.dense."),
    (r"(\.blocks\.\d+)\.attn\.", r"\1.attention.self."),  # qkv, relative_position_bias_table / _index
    (r"(\.blocks\.\d+)\.mlp\.fc1\.", r"\1.intermediate.dense."),
    (r"(\.blocks\.\d+)\.mlp\.fc2\.", r"\1.output.dense."),
]

# Original keys with no place in ClapModel, each dropped for the stated reason.
IGNORED_KEYS: list[tuple[str, str]] = [
    (r"^(audio|text)_transform\.",
     "MLP heads used only by the original training loss; audio/text embeddings never pass through them"),
    (r"^audio_branch\.(spectrogram_extractor|logmel_extractor)\.",
     "fixed STFT kernels and mel filterbank; in HF the log-mel is computed by ClapFeatureExtractor"),
    (r"^audio_branch\.(tscam_conv|head)\.",
     "HTSAT's AudioSet classifier; the CLAP embedding is pooled before it and ClapModel has no such module"),
    (r"^audio_branch\.layers\.\d+\.blocks\.\d+\.attn_mask$",
     "shifted-window mask, a function of the window geometry only; HF rebuilds it at every forward pass"),
]

# ClapModel buffers an original checkpoint may lack (RoBERTa keeps token_type_ids unsaved, and checkpoints
# re-saved with transformers >= 4.31 drop position_ids): constants (arange / zeros) kept from the fresh model.
CONSTANT_BUFFERS = ("text_model.embeddings.position_ids", "text_model.embeddings.token_type_ids")

# numpy scalars (e.g. training metadata) are plain data; allow them under numpy 1.x and 2.x module names.
_NUMPY_SCALAR = np.float64(0).__reduce__()[0]
NUMPY_SAFE_GLOBALS = [(_NUMPY_SCALAR, f"numpy.{core}.multiarray.scalar") for core in ("core", "_core")] + [
    np.dtype, *(type(np.dtype(code)) for code in "?" + np.typecodes["AllInteger"] + np.typecodes["AllFloat"])]


def default_config() -> ClapConfig:
    """The architecture of `laion/clap-htsat-unfused` and LAION's non-fusion HTSAT-tiny checkpoints.

    Why: the `.pt` file holds no config. These numbers equal transformers' `ClapConfig()` defaults, written
    out so a change of defaults cannot silently change the conversion. One known difference from the original
    model: RoBERTa-base uses layer_norm_eps=1e-5, the HF config (and the hub model) 1e-12.
    HTSAT-base checkpoints (the `music_*` ones) need patch_embeds_hidden_size=128, depths=(2, 2, 12, 2) and
    audio hidden_size=1024; fusion checkpoints need enable_fusion=True, fusion_type="aff_2d".
    """
    return ClapConfig(
        text_config=dict(vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                         intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1, pad_token_id=1),
        audio_config=dict(patch_embeds_hidden_size=96, depths=[2, 2, 6, 2], num_attention_heads=[4, 8, 16, 32],
                          window_size=8, spec_size=256, num_mel_bins=64, hidden_size=768, enable_fusion=False),
        projection_dim=512, projection_hidden_act="relu")


def load_original_state_dict(ckpt: str | Path, trust_pickle: bool = False) -> dict[str, torch.Tensor]:
    """Read the tensors of a LAION-CLAP `.pt` file: its "state_dict" entry or the raw dict, "module." stripped.

    Args:
        ckpt: path of the `.pt` file.
        trust_pickle: unpickle arbitrary Python objects (can run code); only for files from a trusted source
            that hold more than tensors and numpy scalars.
    """
    try:
        with torch.serialization.safe_globals(NUMPY_SAFE_GLOBALS):
            checkpoint = torch.load(ckpt, map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError as error:
        reason = str(error).split("WeightsUnpickler error:")[-1].strip().splitlines()[0]
        raise DataError(f"{ckpt}: holds Python objects besides tensors ({reason}); "
                        "if you trust the file, convert it with trust_pickle=True") from None
    state_dict = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise DataError(f"{ckpt}: no state dict of tensors (neither under 'state_dict' nor at the top level)")
    return {k.removeprefix("module."): v for k, v in state_dict.items()}


def to_hf_state_dict(original: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename `original` into ClapModel keys and check it fills `target` exactly, shapes included.

    Args:
        original: state dict in the LAION-CLAP layout, without "module." prefixes.
        target: the ClapModel state dict to fill (tensors on any device, "meta" included; only shapes are read).
    """
    converted: dict[str, tuple[str, torch.Tensor]] = {}  # HF key -> (original key, tensor)
    for name, tensor in original.items():
        if any(re.search(pattern, name) for pattern, _ in IGNORED_KEYS):
            continue
        hf_name = name
        for pattern, replacement in RENAME_RULES:
            hf_name = re.sub(pattern, replacement, hf_name)
        if ".attention.self.qkv." in hf_name:  # fused rows: [query; key; value]
            for part, piece in zip(("query", "key", "value"), tensor.chunk(3, dim=0)):
                converted[hf_name.replace(".qkv.", f".{part}.")] = (name, piece)
        else:
            converted[hf_name] = (name, tensor)

    unexpected = sorted({name for hf_name, (name, _) in converted.items() if hf_name not in target})
    missing = [k for k in target if k not in converted and k not in CONSTANT_BUFFERS]
    mismatched = [f"{name} {tuple(t.shape)} -> {hf_name} {tuple(target[hf_name].shape)}"
                  for hf_name, (name, t) in converted.items() if hf_name in target and t.shape != target[hf_name].shape]
    problems = [f"{label}: {', '.join(keys)}" for label, keys in (
        ("original keys with no place in ClapModel", unexpected),
        ("ClapModel keys no original key maps to", missing),
        ("shape mismatches (wrong config?)", mismatched)) if keys]
    if problems:
        raise DataError("cannot convert LAION-CLAP checkpoint; " + "; ".join(problems))
    return {hf_name: tensor for hf_name, (_, tensor) in converted.items()}


def convert_laion_checkpoint(ckpt: str | Path, out_dir: str | Path, config: ClapConfig | None = None,
                             trust_pickle: bool = False) -> ClapModel:
    """Convert a LAION-CLAP `.pt` checkpoint and `save_pretrained` it (safetensors) to `out_dir`.

    The output holds the model only. Save the `ClapProcessor` of the matching hub model next to it (e.g.
    `ClapProcessor.from_pretrained("laion/clap-htsat-unfused").save_pretrained(out_dir)`) so it can be used.

    Args:
        ckpt: path of the original `.pt` file.
        out_dir: directory to write config.json and model.safetensors to.
        config: architecture of the checkpoint; `default_config()` (HTSAT-tiny, unfused) when None.
        trust_pickle: see `load_original_state_dict`.
    """
    original = load_original_state_dict(ckpt, trust_pickle)
    model = ClapModel(config or default_config())
    target = model.state_dict()
    state_dict = to_hf_state_dict(original, target)
    for name in CONSTANT_BUFFERS:
        state_dict.setdefault(name, target[name])
    model.load_state_dict(state_dict, strict=True)
    model.eval().save_pretrained(out_dir)
    return model
