"""The offline CLAP: tokenizer round trip, checkpoint directory round trip, AudioLDM drop-in."""
from __future__ import annotations

import json

import pytest
import torch
from transformers import ClapModel, ClapProcessor, ClapTextModelWithProjection, SpeechT5HifiGan, SpeechT5HifiGanConfig

from tclap.data.negatives_eval import LABELLED_SET
from tclap.data.phrasing import PHRASINGS, label_text
from tclap.data.synth import CLASSES
from tclap.model import ClapEncoder, ModelConfig, build_tiny, load_clap, save_clap

LABELS = [label_text(c) for c in CLASSES]
CAPTIONS = [p.render(LABELS[i:i + p.n_events]) for i in range(0, 9) for p in PHRASINGS]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    model, processor = build_tiny(ModelConfig(vocab_size=500), CAPTIONS, seed=0)
    path = save_clap(model, processor, tmp_path_factory.mktemp("clap") / "tiny", {"made_by": "test"})
    return model, processor, path


def test_tokenizer_round_trips_every_caption_without_unknown_tokens(tiny):
    _, processor, _ = tiny
    tokenizer = processor.tokenizer
    unseen = [json.loads(line)["caption"] for line in LABELLED_SET.read_text().splitlines()]  # never trained on
    for caption in CAPTIONS + unseen + ["Zebra ünïcode 🐕 12:30!"]:
        ids = tokenizer(caption)["input_ids"]
        assert tokenizer.unk_token_id not in ids
        assert tokenizer.decode(ids, skip_special_tokens=True) == caption
    assert len(tokenizer(CAPTIONS[0])["input_ids"]) < len(CAPTIONS[0])  # BPE merged the training words


def test_checkpoint_directory_round_trips(tiny):
    model, _, path = tiny
    loaded, processor = load_clap(path)
    for name, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[name]), name
    assert isinstance(processor, ClapProcessor) and processor.feature_extractor.sampling_rate == 16000
    assert json.loads((path / "tclap_provenance.json").read_text()) == {"made_by": "test"}


def test_encoder_embeddings_are_unit_vectors_of_the_projection_width(tiny):
    model, processor, _ = tiny
    encoder = ClapEncoder(model, processor).eval()
    with torch.no_grad():
        audio = encoder.audio_embeds(torch.randn(3, 64000) * 0.1)
        tokens = encoder.tokenize(CAPTIONS[:3])
        text = encoder.text_embeds(tokens["input_ids"], tokens["attention_mask"])
    assert audio.shape == text.shape == (3, 128)
    assert torch.allclose(audio.norm(dim=-1), torch.ones(3)) and torch.allclose(text.norm(dim=-1), torch.ones(3))


def test_text_tower_drops_into_audioldm_pipeline(tiny):
    """AudioLDMPipeline._encode_prompt must give our normalised text embedding, unchanged."""
    from diffusers import AudioLDMPipeline, AutoencoderKL, DDIMScheduler, UNet2DConditionModel

    model, processor, path = tiny
    text_encoder = ClapTextModelWithProjection.from_pretrained(path)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(8, 16), layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=4, cross_attention_dim=16, class_embed_type="simple_projection",
        projection_class_embeddings_input_dim=128, class_embeddings_concat=True)
    vae = AutoencoderKL(in_channels=1, out_channels=1, latent_channels=4, block_out_channels=(8,),
                        down_block_types=("DownEncoderBlock2D",), up_block_types=("UpDecoderBlock2D",),
                        norm_num_groups=4)
    vocoder = SpeechT5HifiGan(SpeechT5HifiGanConfig(model_in_dim=8, upsample_initial_channel=8,
                                                    upsample_rates=[2], upsample_kernel_sizes=[4],
                                                    resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1]]))
    pipe = AudioLDMPipeline(vae=vae, text_encoder=text_encoder, tokenizer=processor.tokenizer, unet=unet,
                            scheduler=DDIMScheduler(), vocoder=vocoder)
    with torch.no_grad():
        embeds = pipe._encode_prompt(CAPTIONS[:2], torch.device("cpu"), 1, False)
        encoder = ClapEncoder(ClapModel.from_pretrained(path), processor).eval()
        tokens = encoder.tokenize(CAPTIONS[:2])
        expected = encoder.text_embeds(tokens["input_ids"], tokens["attention_mask"])
    assert embeds.shape == (2, 128)
    assert torch.allclose(embeds, expected, atol=1e-6)
