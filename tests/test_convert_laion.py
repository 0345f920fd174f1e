"""Tests for tclap.convert_laion: a tiny checkpoint written in the original LAION-CLAP layout, converted and checked.

The original layout is enumerated here by hand from the LAION-AI/CLAP code (model.py: RobertaModel text branch,
MLPLayers transforms, nn.Sequential projections; htsat.py: HTSAT_Swin_Transformer), each tensor paired with the
ClapModel key it must land on. None of it is derived from the converter's rename rules.
"""
from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import ClapConfig, ClapModel, ClapTextModelWithProjection

from tclap.convert_laion import convert_laion_checkpoint, default_config, load_original_state_dict, to_hf_state_dict
from tclap.errors import DataError

TEXT = dict(vocab_size=40, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=24)
AUDIO = dict(patch_embeds_hidden_size=8, depths=[2, 1], num_attention_heads=[2, 4], window_size=4, spec_size=64,
             num_mel_bins=16, hidden_size=16, num_classes=5)
PROJECTION = 16
N_FFT = 32  # the original's audio_cfg.window_size: only shapes the (dropped) STFT kernels


def tiny_config() -> ClapConfig:
    return ClapConfig(text_config=TEXT, audio_config=AUDIO, projection_dim=PROJECTION)


def laion_layout(text: dict, audio: dict, projection: int, n_fft: int) -> list[tuple[str, object, tuple]]:
    """(original key, ClapModel key | (query, key, value) keys | None when dropped, shape) for every tensor."""
    rows = []
    hidden, inter = text["hidden_size"], text["intermediate_size"]
    t, ht = "text_branch.", "text_model."
    for name, shape in [("embeddings.position_ids", (1, text["max_position_embeddings"])),
                        ("embeddings.word_embeddings.weight", (text["vocab_size"], hidden)),
                        ("embeddings.position_embeddings.weight", (text["max_position_embeddings"], hidden)),
                        ("embeddings.token_type_embeddings.weight", (1, hidden)),
                        ("embeddings.LayerNorm.weight", (hidden,)), ("embeddings.LayerNorm.bias", (hidden,)),
                        ("pooler.dense.weight", (hidden, hidden)), ("pooler.dense.bias", (hidden,))]:
        rows.append((t + name, ht + name, shape))
    for i in range(text["num_hidden_layers"]):
        for name, shape in [("attention.self.query", (hidden, hidden)), ("attention.self.key", (hidden, hidden)),
                            ("attention.self.value", (hidden, hidden)), ("attention.output.dense", (hidden, hidden)),
                            ("attention.output.LayerNorm", (hidden,)), ("intermediate.dense", (inter, hidden)),
                            ("output.dense", (hidden, inter)), ("output.LayerNorm", (hidden,))]:
            layer = f"encoder.layer.{i}.{name}"
            rows.append((f"{t}{layer}.weight", f"{ht}{layer}.weight", shape))
            rows.append((f"{t}{layer}.bias", f"{ht}{layer}.bias", shape[:1]))

    a, ha = "audio_branch.", "audio_model.audio_encoder."
    embed, mels, window = audio["patch_embeds_hidden_size"], audio["num_mel_bins"], audio["window_size"]
    rows += [(a + "spectrogram_extractor.stft.conv_real.weight", None, (n_fft // 2 + 1, 1, n_fft)),
             (a + "spectrogram_extractor.stft.conv_imag.weight", None, (n_fft // 2 + 1, 1, n_fft)),
             (a + "logmel_extractor.melW", None, (n_fft // 2 + 1, mels))]
    for name in ("weight", "bias", "running_mean", "running_var"):
        rows.append((f"{a}bn0.{name}", f"{ha}batch_norm.{name}", (mels,)))
    rows.append((a + "bn0.num_batches_tracked", ha + "batch_norm.num_batches_tracked", ()))
    rows += [(a + "patch_embed.proj.weight", ha + "patch_embed.proj.weight", (embed, 1, 4, 4)),
             (a + "patch_embed.proj.bias", ha + "patch_embed.proj.bias", (embed,)),
             (a + "patch_embed.norm.weight", ha + "patch_embed.norm.weight", (embed,)),
             (a + "patch_embed.norm.bias", ha + "patch_embed.norm.bias", (embed,))]
    if audio.get("enable_fusion"):  # fusion_type "aff_2d": PatchEmbed.mel_conv2d and feature_fusion.AFF(type="2D")
        rows += [(a + "patch_embed.mel_conv2d.weight", ha + "patch_embed.mel_conv2d.weight", (embed, 1, 4, 12)),
                 (a + "patch_embed.mel_conv2d.bias", ha + "patch_embed.mel_conv2d.bias", (embed,))]
        inner = embed // 4
        for branch, convs, norms in (("local_att", (0, 3), (1, 4)), ("global_att", (1, 4), (2, 5))):
            f = f"patch_embed.fusion_model.{branch}."
            for index, (c_out, c_in) in zip(convs, ((inner, embed), (embed, inner))):
                rows += [(f"{a}{f}{index}.weight", f"{ha}{f}{index}.weight", (c_out, c_in, 1, 1)),
                         (f"{a}{f}{index}.bias", f"{ha}{f}{index}.bias", (c_out,))]
            for index, channels in zip(norms, (inner, embed)):
                for name in ("weight", "bias", "running_mean", "running_var"):
                    rows.append((f"{a}{f}{index}.{name}", f"{ha}{f}{index}.{name}", (channels,)))
                rows.append((f"{a}{f}{index}.num_batches_tracked", f"{ha}{f}{index}.num_batches_tracked", ()))
    resolution = audio["spec_size"] // 4
    n_stages = len(audio["depths"])
    for i, (depth, heads) in enumerate(zip(audio["depths"], audio["num_attention_heads"])):
        dim, res = embed * 2 ** i, resolution // 2 ** i
        win = min(window, res)
        for j in range(depth):
            o, h = f"{a}layers.{i}.blocks.{j}.", f"{ha}layers.{i}.blocks.{j}."
            rows += [(o + "norm1.weight", h + "layernorm_before.weight", (dim,)),
                     (o + "norm1.bias", h + "layernorm_before.bias", (dim,)),
                     (o + "attn.relative_position_bias_table", h + "attention.self.relative_position_bias_table",
                      ((2 * win - 1) ** 2, heads)),
                     (o + "attn.relative_position_index", h + "attention.self.relative_position_index",
                      (win * win, win * win)),
                     (o + "attn.proj.weight", h + "attention.output.dense.weight", (dim, dim)),
                     (o + "attn.proj.bias", h + "attention.output.dense.bias", (dim,)),
                     (o + "norm2.weight", h + "layernorm_after.weight", (dim,)),
                     (o + "norm2.bias", h + "layernorm_after.bias", (dim,)),
                     (o + "mlp.fc1.weight", h + "intermediate.dense.weight", (4 * dim, dim)),
                     (o + "mlp.fc1.bias", h + "intermediate.dense.bias", (4 * dim,)),
                     (o + "mlp.fc2.weight", h + "output.dense.weight", (dim, 4 * dim)),
                     (o + "mlp.fc2.bias", h + "output.dense.bias", (dim,))]
            for part, shape in (("weight", (3 * dim, dim)), ("bias", (3 * dim,))):  # rows: [query; key; value]
                qkv = tuple(f"{h}attention.self.{name}.{part}" for name in ("query", "key", "value"))
                rows.append((f"{o}attn.qkv.{part}", qkv, shape))
            if j % 2 == 1 and res > window:  # shifted window: the mask is a registered buffer
                rows.append((o + "attn_mask", None, ((res // win) ** 2, win * win, win * win)))
        if i < n_stages - 1:
            o, h = f"{a}layers.{i}.downsample.", f"{ha}layers.{i}.downsample."
            rows += [(o + "reduction.weight", h + "reduction.weight", (2 * dim, 4 * dim)),
                     (o + "norm.weight", h + "norm.weight", (4 * dim,)), (o + "norm.bias", h + "norm.bias", (4 * dim,))]
    features, classes = embed * 2 ** (n_stages - 1), audio["num_classes"]
    freq_bins = audio["spec_size"] // 2 ** (n_stages - 1) // 4 // (audio["spec_size"] // mels)
    rows += [(a + "norm.weight", ha + "norm.weight", (features,)), (a + "norm.bias", ha + "norm.bias", (features,)),
             (a + "tscam_conv.weight", None, (classes, features, freq_bins, 3)),
             (a + "tscam_conv.bias", None, (classes,)),
             (a + "head.weight", None, (classes, classes)), (a + "head.bias", None, (classes,))]

    for tower, width in (("text", hidden), ("audio", features)):
        rows += [(f"{tower}_projection.0.weight", f"{tower}_projection.linear1.weight", (projection, width)),
                 (f"{tower}_projection.0.bias", f"{tower}_projection.linear1.bias", (projection,)),
                 (f"{tower}_projection.2.weight", f"{tower}_projection.linear2.weight", (projection, projection)),
                 (f"{tower}_projection.2.bias", f"{tower}_projection.linear2.bias", (projection,))]
        for layer in (0, 3):  # MLPLayers: Linear, ReLU, Dropout, Linear
            rows += [(f"{tower}_transform.sequential.{layer}.weight", None, (projection, projection)),
                     (f"{tower}_transform.sequential.{layer}.bias", None, (projection,))]
    rows += [("logit_scale_a", "logit_scale_a", ()), ("logit_scale_t", "logit_scale_t", ())]
    return rows


def fill(rows: list[tuple[str, object, tuple]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Distinct random values per tensor; integer buffers get valid integers."""
    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, _, shape in rows:
        if name.endswith("position_ids"):
            tensors[name] = torch.arange(shape[1]).unsqueeze(0)
        elif name.endswith("relative_position_index"):
            tensors[name] = torch.randint(0, 9, shape, generator=gen)  # valid rows of every bias table here
        elif name.endswith("num_batches_tracked"):
            tensors[name] = torch.tensor(7)
        elif name.endswith("running_var"):
            tensors[name] = torch.rand(shape, generator=gen) + 0.5
        else:
            tensors[name] = torch.randn(shape, generator=gen)
    return tensors


def save_laion(path, original: dict[str, torch.Tensor]) -> None:
    torch.save({"epoch": 15, "name": "tiny", "state_dict": {"module." + k: v for k, v in original.items()}}, path)


ROWS = laion_layout(TEXT, AUDIO, PROJECTION, N_FFT)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    original = fill(ROWS)
    path = tmp_path_factory.mktemp("laion") / "tiny.pt"
    save_laion(path, original)
    out = tmp_path_factory.mktemp("hf")
    model = convert_laion_checkpoint(path, out, tiny_config())
    return original, model, out


def assert_placed(rows: list[tuple[str, object, tuple]], original: dict[str, torch.Tensor], model: ClapModel) -> None:
    state = model.state_dict()
    for name, hf, _ in rows:
        if hf is None:
            continue
        placed = torch.cat([state[k] for k in hf]) if isinstance(hf, tuple) else state[hf]
        assert torch.equal(placed, original[name]), name


def test_every_original_tensor_lands_in_its_hf_place(converted):
    original, model, _ = converted
    assert_placed(ROWS, original, model)


def test_fusion_checkpoint_converts_with_a_fusion_config(tmp_path):
    audio = dict(AUDIO, enable_fusion=True, fusion_type="aff_2d")
    rows = laion_layout(TEXT, audio, PROJECTION, N_FFT)
    original = fill(rows)
    save_laion(tmp_path / "fused.pt", original)
    with pytest.raises(DataError, match=r"audio_branch\.patch_embed\.mel_conv2d\.weight"):
        convert_laion_checkpoint(tmp_path / "fused.pt", tmp_path / "unfused", tiny_config())
    fused = ClapConfig(text_config=TEXT, audio_config=audio, projection_dim=PROJECTION)
    assert_placed(rows, original, convert_laion_checkpoint(tmp_path / "fused.pt", tmp_path / "fused", fused))


def test_converted_model_has_exactly_the_mapped_keys(converted):
    _, model, _ = converted
    mapped = set()
    for _, hf, _ in ROWS:
        mapped.update(hf if isinstance(hf, tuple) else [hf] if hf else [])
    assert set(model.state_dict()) == mapped | {"text_model.embeddings.token_type_ids"}
    assert torch.equal(model.state_dict()["text_model.embeddings.token_type_ids"], torch.zeros(1, 24, dtype=torch.long))


def test_output_dir_reloads_as_full_model_and_text_tower(converted):
    original, model, out = converted
    assert (out / "model.safetensors").exists()
    reloaded = ClapModel.from_pretrained(out)
    for name, tensor in model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[name], tensor), name
    text = ClapTextModelWithProjection.from_pretrained(out)
    assert torch.equal(text.text_projection.linear1.weight, original["text_projection.0.weight"])
    assert torch.equal(text.text_model.encoder.layer[1].output.dense.bias,
                       original["text_branch.encoder.layer.1.output.dense.bias"])


def test_embeddings_and_logits_follow_the_original_heads(converted):
    original, model, _ = converted
    input_ids = torch.tensor([[0, 5, 9, 17, 2], [0, 30, 3, 2, 1]])
    attention_mask = (input_ids != 1).long()
    audio = torch.randn(2, 1, 256, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model(input_ids=input_ids, attention_mask=attention_mask, input_features=audio)
        pooled_text = model.text_model(input_ids=input_ids, attention_mask=attention_mask).pooler_output
        pooled_audio = model.audio_model(input_features=audio).pooler_output

    def head(tower: str, x: torch.Tensor) -> torch.Tensor:  # nn.Sequential(Linear, ReLU, Linear) of the original
        hidden = F.relu(F.linear(x, original[f"{tower}_projection.0.weight"], original[f"{tower}_projection.0.bias"]))
        return F.normalize(F.linear(hidden, original[f"{tower}_projection.2.weight"],
                                    original[f"{tower}_projection.2.bias"]), dim=-1)

    text_embeds, audio_embeds = head("text", pooled_text), head("audio", pooled_audio)
    torch.testing.assert_close(out.text_embeds, text_embeds)
    torch.testing.assert_close(out.audio_embeds, audio_embeds)
    torch.testing.assert_close(out.logits_per_text, text_embeds @ audio_embeds.T * original["logit_scale_t"].exp())
    torch.testing.assert_close(out.logits_per_audio, audio_embeds @ text_embeds.T * original["logit_scale_a"].exp())


def test_unknown_key_fails_naming_it(tmp_path):
    original = fill(ROWS)
    original["audio_branch.mel_conv1d.0.weight"] = torch.zeros(3)
    save_laion(tmp_path / "extra.pt", original)
    with pytest.raises(DataError, match=r"no place in ClapModel: audio_branch\.mel_conv1d\.0\.weight"):
        convert_laion_checkpoint(tmp_path / "extra.pt", tmp_path / "out", tiny_config())
    assert not (tmp_path / "out").exists()


def test_missing_key_fails_naming_it(tmp_path):
    original = fill(ROWS)
    del original["audio_branch.layers.0.blocks.1.attn.qkv.bias"]
    save_laion(tmp_path / "missing.pt", original)
    missing = r"maps to: .*audio_model\.audio_encoder\.layers\.0\.blocks\.1\.attention\.self\.key\.bias"
    with pytest.raises(DataError, match=missing):
        convert_laion_checkpoint(tmp_path / "missing.pt", tmp_path / "out", tiny_config())


def test_wrong_config_fails_naming_the_shape_mismatch(tmp_path):
    save_laion(tmp_path / "tiny.pt", fill(ROWS))
    wider = ClapConfig(text_config=TEXT, audio_config=AUDIO, projection_dim=2 * PROJECTION)
    with pytest.raises(DataError, match=r"text_projection\.0\.weight \(16, 32\) -> text_projection\.linear1\.weight"):
        convert_laion_checkpoint(tmp_path / "tiny.pt", tmp_path / "out", wider)


def test_checkpoint_without_position_ids_keeps_the_constant_buffer(tmp_path):
    original = fill(ROWS)
    del original["text_branch.embeddings.position_ids"]
    torch.save(original, tmp_path / "raw.pt")  # raw dict, no "module." prefix
    model = convert_laion_checkpoint(tmp_path / "raw.pt", tmp_path / "out", tiny_config())
    assert torch.equal(model.text_model.embeddings.position_ids, torch.arange(24).unsqueeze(0))


def test_numpy_metadata_loads_but_other_objects_need_trust(tmp_path):
    tensors = {"module.logit_scale_a": torch.tensor(2.0)}
    torch.save({"state_dict": tensors, "epoch": np.int64(15), "loss": np.float32(0.5)}, tmp_path / "numpy.pt")
    assert load_original_state_dict(tmp_path / "numpy.pt") == {"logit_scale_a": tensors["module.logit_scale_a"]}
    torch.save({"state_dict": tensors, "args": argparse.Namespace(lr=1e-4)}, tmp_path / "args.pt")
    with pytest.raises(DataError, match=r"args\.pt.*argparse\.Namespace.*trust_pickle=True"):
        load_original_state_dict(tmp_path / "args.pt")
    assert set(load_original_state_dict(tmp_path / "args.pt", trust_pickle=True)) == {"logit_scale_a"}


def test_file_without_state_dict_fails(tmp_path):
    torch.save({"epoch": 3}, tmp_path / "empty.pt")
    with pytest.raises(DataError, match=r"empty\.pt: no state dict"):
        load_original_state_dict(tmp_path / "empty.pt")


def test_default_config_fits_the_htsat_tiny_roberta_base_layout():
    """Shapes only (meta tensors): the layout of 630k-audioset-best.pt against ClapModel(default_config())."""
    audio = dict(patch_embeds_hidden_size=96, depths=[2, 2, 6, 2], num_attention_heads=[4, 8, 16, 32], window_size=8,
                 spec_size=256, num_mel_bins=64, num_classes=527)
    text = dict(vocab_size=50265, hidden_size=768, num_hidden_layers=12, intermediate_size=3072,
                max_position_embeddings=514)
    rows = laion_layout(text, audio, 512, n_fft=1024)
    original = {name: torch.empty(shape, device="meta") for name, _, shape in rows}
    with torch.device("meta"):
        target = ClapModel(default_config()).state_dict()
    mapped = to_hf_state_dict(original, target)
    assert set(target) - set(mapped) == {"text_model.embeddings.token_type_ids"}
    assert default_config().projection_hidden_act == "relu"  # the original CLAP's mlp_act
