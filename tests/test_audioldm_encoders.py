"""Conditioning encoders: `--cond` resolution, embeddings against ClapModel's own feature path, errors."""
from __future__ import annotations

import logging
import shutil
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import ClapFeatureExtractor, ClapModel, ClapTextModelWithProjection

from audioldm_cond.encoders import ClapConditionEncoder, check_unet_width, resolve_encoder, text_tower
from audioldm_cond.pipeline import tiny_unet
from tclap.errors import DataError
from tclap.model import ModelConfig, build_tiny, save_clap

CAPTIONS = ["a dog barks then a bell rings", "rain falls on a roof", "a door slams followed by footsteps", ""]


@pytest.fixture(scope="module")
def clap_dir(tmp_path_factory):
    model, processor = build_tiny(ModelConfig(projection_dim=32, vocab_size=300), CAPTIONS, seed=0)
    return save_clap(model, processor, tmp_path_factory.mktemp("clap") / "tiny", {"made_by": "test"})


@pytest.fixture(scope="module")
def encoder(clap_dir):
    return resolve_encoder(str(clap_dir))


def test_a_directory_value_gives_a_clap_encoder_with_its_text_tower(encoder, clap_dir):
    assert isinstance(encoder, ClapConditionEncoder)
    assert isinstance(encoder.text_encoder, ClapTextModelWithProjection)
    assert encoder.width == 32 and encoder.sample_rate == 16000
    assert encoder.tokenizer.model_max_length == 78  # max_position_embeddings 80 minus RoBERTa's offset


def test_text_tower_loads_quietly_but_refuses_missing_text_weights(clap_dir, tmp_path):
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    library_logger = logging.getLogger("transformers")
    library_logger.addHandler(handler)
    try:
        text_tower(clap_dir)
    finally:
        library_logger.removeHandler(handler)
    assert not [r for r in records if "LOAD REPORT" in r.getMessage()]  # a full CLAP's audio weights are expected
    broken = tmp_path / "broken"
    shutil.copytree(clap_dir, broken)
    weights = load_file(broken / "model.safetensors")
    save_file({k: v for k, v in weights.items() if "text_projection" not in k}, broken / "model.safetensors")
    with pytest.raises(DataError, match="lacks text-tower weights text_projection"):
        text_tower(broken)


def test_text_embeds_match_clap_model_text_features(encoder, clap_dir):
    """Padded to the tokenizer's max length (as the pipeline does) vs ClapModel padded to the longest caption."""
    ours = encoder.text_embeds(CAPTIONS)
    model = ClapModel.from_pretrained(clap_dir).eval()
    tokens = encoder.tokenizer(CAPTIONS, padding=True, return_tensors="pt")
    with torch.no_grad():
        reference = model.get_text_features(**tokens).pooler_output
    assert ours.shape == (4, 32)
    assert torch.allclose(ours.norm(dim=-1), torch.ones(4))
    assert torch.allclose(ours, reference, atol=1e-5)


def test_audio_embeds_match_the_feature_extractor_and_clap_model(encoder, clap_dir):
    clips = torch.randn(2, 3 * 16000, generator=torch.Generator().manual_seed(0)) * 0.1
    ours = encoder.audio_embeds(clips)
    extractor = ClapFeatureExtractor.from_pretrained(clap_dir)
    features = extractor([c.numpy() for c in clips], sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        reference = ClapModel.from_pretrained(clap_dir).eval().get_audio_features(**features).pooler_output
    assert ours.shape == (2, 32)
    assert torch.allclose(ours.norm(dim=-1), torch.ones(2))
    assert torch.allclose(ours, reference, atol=1e-4)


def test_clap_and_tclap_keywords_use_the_directories_they_are_given(encoder, clap_dir):
    expected = encoder.text_embeds(CAPTIONS[:2])
    for cond, kwargs in [("clap", {"clap": clap_dir}), ("tclap", {"tclap": clap_dir})]:
        assert torch.allclose(resolve_encoder(cond, **kwargs).text_embeds(CAPTIONS[:2]), expected)


def test_tclap_without_a_directory_is_an_error():
    with pytest.raises(DataError, match="--cond tclap"):
        resolve_encoder("tclap")


def test_missing_or_non_clap_directory_is_named(tmp_path):
    with pytest.raises(DataError, match="not found: .*nowhere"):
        resolve_encoder(str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="neither a CLAP checkpoint directory .*nor a pipeline directory"):
        resolve_encoder(str(tmp_path))
    with pytest.raises(DataError, match="--cond clap: CLAP directory not found: .*run/final"):
        resolve_encoder("clap", clap=str(tmp_path / "run" / "final"))  # a local path, not a hub id


def test_unknown_keyword_lists_the_choices():
    with pytest.raises(DataError, match="'laion'.*clap, tclap, msclap"):
        resolve_encoder("laion")


def test_msclap_without_the_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "msclap", None)  # makes `import msclap` fail even where it is installed
    with pytest.raises(DataError, match="pip install msclap"):
        resolve_encoder("msclap")


def test_unet_width_check():
    check_unet_width(tiny_unet(32), 32)
    with pytest.raises(DataError, match="expects 16-d .* gives 32-d"):
        check_unet_width(tiny_unet(16), 32)


def test_embeddings_are_computed_without_a_graph(encoder):
    assert not encoder.text_embeds(CAPTIONS[:1]).requires_grad
    assert not encoder.audio_embeds(torch.full((1, 16000), 0.01)).requires_grad
