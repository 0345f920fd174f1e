"""`tclap diagnose`: clean-latent algebra, which caption goes to which column, and the command on a shipped pipeline."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from audioldm_cond.diagnosis import caption_mean_errors, clean_latent, encoded, timestep_errors
from audioldm_cond.encoders import caption_embeds
from audioldm_cond.pipeline import load_pipeline
from tclap_demo.studio import SHIPPED
from tclap.cli import main as tclap
from tclap.errors import DataError


@pytest.fixture(scope="module")
def pipe():
    return load_pipeline(SHIPPED / "tclap")


@pytest.mark.parametrize("kind", ["epsilon", "v_prediction"])
def test_clean_latent_inverts_the_forward_process(kind):
    """noisy = sqrt(a) z0 + sqrt(1 - a) eps; the exact eps (or v = sqrt(a) eps - sqrt(1 - a) z0) gives z0 back."""
    z0, eps, a = torch.randn(2, 8, 5, 4, dtype=torch.float64), torch.randn(2, 8, 5, 4, dtype=torch.float64), 0.3
    noisy = np.sqrt(a) * z0 + np.sqrt(1 - a) * eps
    prediction = eps if kind == "epsilon" else np.sqrt(a) * eps - np.sqrt(1 - a) * z0
    assert torch.allclose(clean_latent(noisy, prediction, torch.tensor(a, dtype=torch.float64), kind), z0)
    with pytest.raises(DataError, match="prediction_type 'sample'"):
        clean_latent(noisy, prediction, torch.tensor(a), "sample")


def test_a_unet_that_follows_its_caption_is_exact_only_under_it(pipe):
    """An oracle UNet: the exact target when it gets the caption's embedding, zeros otherwise."""
    latents = torch.randn(2, 8, 12, 16)
    captions, swapped = ["beep and then bell", "knock followed by siren"], ["bell and then beep", "siren followed by knock"]
    wanted = caption_embeds(pipe.text_encoder, pipe.tokenizer, captions)
    alphas = pipe.scheduler.alphas_cumprod

    class Oracle(torch.nn.Module):
        def forward(self, sample, timestep, encoder_hidden_states=None, class_labels=None):
            a = alphas[timestep][:, None, None, None]
            eps = (sample - a.sqrt() * latents) / (1 - a).sqrt()
            exact = a.sqrt() * eps - (1 - a).sqrt() * latents  # the shipped pipelines predict v
            follows = torch.allclose(class_labels, wanted)
            return type("Out", (), {"sample": exact if follows else torch.zeros_like(sample)})()

    unet, pipe.unet = pipe.unet, Oracle()
    try:
        rows = timestep_errors(pipe, latents, captions, swapped, timesteps=(100, 900))
    finally:
        pipe.unet = unet
    for row in rows:
        assert row.target_mse == pytest.approx(0, abs=1e-8) and row.x0_mse == pytest.approx(0, abs=1e-8)
        a = float(alphas[row.timestep])  # zero v implies x0 = sqrt(a) * noisy: its error is known in expectation
        assert row.x0_mse_swapped == row.x0_mse_unconditional > 0.5 * ((1 - np.sqrt(a) ** 2) ** 2 + a * (1 - a))


def test_clips_of_other_lengths_in_other_batches_are_cut_to_the_shortest(pipe, tmp_path):
    import soundfile as sf

    rng = np.random.default_rng(0)
    for name, seconds in (("long.wav", 4.0), ("short.wav", 3.0)):
        sf.write(tmp_path / name, 0.1 * rng.standard_normal(int(16000 * seconds)).astype(np.float32), 16000)
    records = [{"audio": "long.wav"}, {"audio": "short.wav"}]
    both = encoded(pipe, tmp_path, records, batch=1)  # one clip a batch: the lengths meet only at the end
    short, long = encoded(pipe, tmp_path, records[1:]), encoded(pipe, tmp_path, records[:1])
    assert both.shape == (2, *short.shape[1:]) and short.shape[2] < long.shape[2]
    assert torch.equal(both[1], short[0]) and torch.equal(both[0], long[0, :, :short.shape[2]])


def test_diagnose_command_on_the_shipped_pipeline(mixup_dir, tmp_path, capsys):
    tclap(["diagnose", "--pipeline", str(SHIPPED / "tclap"), "--mixup", str(mixup_dir), "--clips", "2",
           "--timesteps", "300", "900", "--json", str(tmp_path / "d.json")])
    out = capsys.readouterr().out
    assert "| x0-MSE, swapped caption |" in out and "DDIM from noise ends at latent std" in out
    result = json.loads((tmp_path / "d.json").read_text())
    assert [r["timestep"] for r in result["timesteps"]] == [300, 900] and result["clips"] == 2
    assert np.isfinite(result["sampled_latent_std"]) and result["real_latent_std"] > 0
    with pytest.raises(SystemExit):
        tclap(["diagnose", "--pipeline", str(SHIPPED / "tclap"), "--mixup", str(mixup_dir), "--split", "nope"])
    assert "no clips in split 'nope'" in capsys.readouterr().err


def test_diagnose_reports_the_caption_mean_bound_with_a_reference(mixup_dir, tmp_path, capsys):
    """Wiring only (the bound's arithmetic is tested above): train clips against their own split's means,
    so that each clip's order occurs in the reference; whether its swap does depends on the small world."""
    tclap(["diagnose", "--pipeline", str(SHIPPED / "tclap"), "--mixup", str(mixup_dir), "--split", "train",
           "--clips", "20",
           "--timesteps", "900", "--reference", str(mixup_dir), "--json", str(tmp_path / "d.json")])
    assert "Best possible as t -> T" in capsys.readouterr().out
    means = json.loads((tmp_path / "d.json").read_text())["caption_means"]
    assert means["reference_clips"] == 20 and 1 <= means["clips"] <= 20
    assert means["x0_mse_unconditional"] > 0 and means["x0_mse"] >= 0
    with pytest.raises(SystemExit):
        tclap(["diagnose", "--pipeline", str(SHIPPED / "tclap"), "--mixup", str(mixup_dir), "--reference",
               str(mixup_dir), "--reference-split", "nope"])
    assert "no clips in split 'nope'" in capsys.readouterr().err


def test_caption_mean_errors_against_a_hand_computation():
    """Means per event order, computed here with explicit loops over numpy arrays."""
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(9, 2, 3, 2))
    reference_orders = [("a", "b")] * 4 + [("b", "a")] * 3 + [("c", "a")] * 2
    held = rng.normal(size=(3, 2, 3, 2))
    orders, swapped = [("a", "b"), ("b", "a"), ("a", "c")], [("b", "a"), ("a", "b"), ("c", "a")]
    result = caption_mean_errors(torch.from_numpy(held), orders, swapped, torch.from_numpy(reference),
                                 reference_orders)

    def mean_of(order):
        rows = [reference[i] for i in range(9) if reference_orders[i] == order]
        return sum(rows) / len(rows)

    kept = [0, 1]  # ("a", "c") has no reference clips
    expected = [np.mean([np.mean((held[i] - m(i)) ** 2) for i in kept])
                for m in (lambda i: mean_of(orders[i]), lambda i: mean_of(swapped[i]),
                          lambda i: reference.sum(0) / 9)]
    assert [result["x0_mse"], result["x0_mse_swapped"], result["x0_mse_unconditional"]] == pytest.approx(expected)
    assert result["clips"] == 2 and result["min_reference_clips"] == 3


def test_caption_mean_errors_refuse_what_cannot_be_compared():
    latents, reference = torch.zeros(1, 2, 3, 2), torch.zeros(2, 2, 3, 2)
    with pytest.raises(DataError, match="none of the held-out clips"):
        caption_mean_errors(latents, [("a", "b")], [("b", "a")], reference, [("a", "b"), ("a", "c")])
    with pytest.raises(DataError, match=r"shape \(2, 4, 2\)"):
        caption_mean_errors(latents, [("a", "b")], [("b", "a")], torch.zeros(2, 2, 4, 2), [("a", "b"), ("b", "a")])
