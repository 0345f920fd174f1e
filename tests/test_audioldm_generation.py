"""`tclap generate`: prompt files, checks before loading, truncation, schedulers, reproducible WAVs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audioldm_cond.encoders import resolve_encoder
from audioldm_cond.generation import (GenerationConfig, Prompt, clipped_share, generate_files, read_prompts, truncate,
                                      waveform_seed)
from audioldm_cond.pipeline import assemble_pipeline, audioldm_scheduler, save_pipeline, tiny_unet, tiny_vae
from audioldm_cond.vocoder import GriffinLimVocoder
from tclap.cli import main
from tclap.errors import DataError
from tclap.model import ModelConfig, build_tiny, save_clap

CAPTIONS = ["a beep followed by a siren", "a knock and then a bell", "a sweep, then a buzz"]


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    model, processor = build_tiny(ModelConfig(projection_dim=32, vocab_size=300), CAPTIONS, seed=0)
    encoder = resolve_encoder(str(save_clap(model, processor, tmp_path_factory.mktemp("clap") / "tiny", {})))
    torch.manual_seed(0)
    pipe = assemble_pipeline(encoder.text_encoder, encoder.tokenizer, tiny_vae(), tiny_unet(encoder.width),
                             GriffinLimVocoder(n_iter=4), audioldm_scheduler())
    return save_pipeline(pipe, tmp_path_factory.mktemp("pipeline") / "tiny")


@pytest.fixture
def prompts(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"id": f"mix{i}", "caption": c}) + "\n" for i, c in enumerate(CAPTIONS)))
    return path


def test_writes_one_wav_per_prompt_named_by_id_and_reproducibly(pipeline_dir, prompts, tmp_path):
    cfg = GenerationConfig(steps=2, seconds=1.0, batch_size=2, seed=5)
    written = generate_files(pipeline_dir, prompts, tmp_path / "a", cfg)
    assert [p.name for p in written] == ["mix0.wav", "mix1.wav", "mix2.wav"]
    audio, rate = sf.read(written[0])
    assert rate == 16000 and audio.shape == (16000,) and np.abs(audio).max() > 0
    rows = [json.loads(line) for line in (tmp_path / "a" / "prompts.jsonl").read_text().splitlines()]
    assert {k: rows[2][k] for k in ("id", "prompt_id", "waveform", "caption", "audio")} == {
        "id": "mix2", "prompt_id": "mix2", "waveform": 0, "caption": CAPTIONS[2], "audio": "mix2.wav"}
    again = generate_files(pipeline_dir, prompts, tmp_path / "b", cfg)
    assert all(np.array_equal(sf.read(x)[0], sf.read(y)[0]) for x, y in zip(written, again))
    # another --seed gives other noise
    other = generate_files(pipeline_dir, prompts, tmp_path / "c", GenerationConfig(steps=2, seconds=1.0, batch_size=2,
                                                                                  seed=6))
    assert not np.array_equal(sf.read(other[0])[0], sf.read(written[0])[0])


def test_dpm_solver_and_negative_prompt_change_the_audio(pipeline_dir, prompts, tmp_path):
    """Same seeds throughout: each setting must reach the sampler, so each changes what comes out."""
    def first_clip(name: str, **settings) -> np.ndarray:
        written = generate_files(pipeline_dir, prompts, tmp_path / name, GenerationConfig(steps=2, seconds=1.0,
                                                                                          **settings))
        assert len(written) == 3
        audio = sf.read(written[0])[0]
        assert np.isfinite(audio).all() and audio.std() > 0
        return audio

    ddim = first_clip("ddim")
    dpm = first_clip("dpm", scheduler="dpm-solver++")
    negative = first_clip("negative", negative_prompt="low quality")
    assert not np.allclose(dpm, ddim, atol=1e-4) and not np.allclose(negative, ddim, atol=1e-4)


def test_plain_text_prompts_get_ids_and_bad_rows_are_named(tmp_path):
    txt = tmp_path / "p.txt"
    txt.write_text("a beep\n\na siren\n")
    assert read_prompts(txt) == [Prompt("prompt0000", "a beep"), Prompt("prompt0001", "a siren")]
    with pytest.raises(DataError, match="scheduler 'euler'"):
        GenerationConfig(scheduler="euler")


def test_over_long_prompt_is_cut_with_a_warning_naming_the_cut(pipeline_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(pipeline_dir / "tokenizer")
    caption = "a beep followed by a siren and then a knock"
    n = len(tokenizer(caption, add_special_tokens=False)["input_ids"])
    assert truncate(tokenizer, caption, n + 2) == caption
    with pytest.warns(UserWarning, match="cut:") as record:
        kept = truncate(tokenizer, caption, n - 1)
    cut = str(record[0].message).split("cut: ")[1].strip("'")
    assert kept + cut == caption and kept and cut


def test_cli_generate_fails_before_loading_on_an_empty_prompt(tmp_path, capsys):
    prompts = tmp_path / "p.csv"
    prompts.write_text("id,caption\nx,\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--pipeline", str(tmp_path / "no_such_pipeline"), "--prompts", str(prompts),
              "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2 and "p.csv:2: empty or missing `caption`" in capsys.readouterr().err


@pytest.mark.parametrize("bad_id", ["../escaped", "sub/x", "a\\b", "..", ".hidden", "NUL", "com1.txt", "x\ty"])
def test_an_id_that_is_not_a_plain_file_name_is_refused_before_anything_is_written(tmp_path, bad_id):
    prompts = tmp_path / "p.csv"
    prompts.write_text(f"id,caption\nok,a beep\n{json.dumps(bad_id)},a siren\n")
    with pytest.raises(DataError, match=r"p.csv:3: id .* a plain file name"):
        generate_files(tmp_path / "no_such_pipeline", prompts, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "escaped.wav").exists()


@pytest.mark.parametrize("name, text, message", [
    ("p.csv", "id,caption\nx,a beep\ny,  \n", r"p.csv:3: empty or missing `caption`"),
    ("d.csv", "id,caption\nx,a beep\nx,a siren\n", r"d.csv:3: duplicate id 'x' \(first at .*d.csv:2\)"),
    ("l.jsonl", '{"id": "a", "caption": "a beep"}\n\n["b", "a beep"]\n',
     r"l.jsonl:3: expected a JSON object .*got a list"),
    ("b.jsonl", '{"id": "a", "caption": "a beep"}\n{"id": "b", "caption": "a siren"\n',
     r"b.jsonl:2: malformed JSON at column 33 \(Expecting .,. delimiter\)"),
])
def test_a_bad_prompt_row_is_named_by_file_and_line(tmp_path, name, text, message):
    """Lines are the file's, blank ones counted; the column is the one inside the line."""
    (tmp_path / name).write_text(text)
    with pytest.raises(DataError, match=message):
        read_prompts(tmp_path / name)


def test_too_short_clips_are_refused_before_loading_with_diffusers_own_minimum(pipeline_dir, prompts, tmp_path):
    """The bound is the one AudioLDMPipeline.check_inputs applies: 0.08 s for the offline 8x VAE and
    Griffin-Lim's 10 ms hop, 0.04 s for the 4x VAE here."""
    from audioldm_cond.pipeline import load_pipeline

    pipe = load_pipeline(pipeline_dir)
    hop = float(np.prod(pipe.vocoder.config.upsample_rates)) / pipe.vocoder.config.sampling_rate
    with pytest.raises(ValueError, match="greater than or equal to 0.04"):
        pipe.check_inputs("a beep", 0.039, hop, 1)
    with pytest.raises(DataError, match=r"--seconds 0.039: .* at least 0.04 s"):
        generate_files(pipeline_dir, prompts, tmp_path / "out", GenerationConfig(seconds=0.039))
    assert not (tmp_path / "out").exists()
    with pytest.raises(DataError, match="at least 0.08 s"):
        generate_files(Path(__file__).resolve().parent.parent / "demo" / "checkpoints" / "tclap", prompts,
                       tmp_path / "out", GenerationConfig(seconds=0.05))


def test_cli_generate_writes_files(pipeline_dir, prompts, tmp_path, capsys):
    main(["generate", "--pipeline", str(pipeline_dir), "--prompts", str(prompts), "--out", str(tmp_path / "g"),
          "--steps", "2", "--seconds", "1", "--scheduler", "dpm-solver++"])
    assert sorted(p.name for p in (tmp_path / "g").glob("*.wav")) == ["mix0.wav", "mix1.wav", "mix2.wav"]
    assert "wrote 3 clips" in capsys.readouterr().out


def test_a_prompt_sounds_the_same_whatever_shares_its_batch(pipeline_dir, tmp_path):
    forward, backward = tmp_path / "xy.jsonl", tmp_path / "yx.jsonl"
    rows = [{"id": "x", "caption": CAPTIONS[0]}, {"id": "y", "caption": CAPTIONS[1]}]
    forward.write_text("".join(json.dumps(r) + "\n" for r in rows))
    backward.write_text("".join(json.dumps(r) + "\n" for r in rows[::-1]))
    cfg = GenerationConfig(steps=2, seconds=1.0, batch_size=2)
    generate_files(pipeline_dir, forward, tmp_path / "xy", cfg)
    generate_files(pipeline_dir, backward, tmp_path / "yx", cfg)
    for name in ("x.wav", "y.wav"):
        assert np.array_equal(sf.read(tmp_path / "xy" / name)[0], sf.read(tmp_path / "yx" / name)[0]), name
    assert not np.array_equal(sf.read(tmp_path / "xy" / "x.wav")[0], sf.read(tmp_path / "xy" / "y.wav")[0])


def test_several_waveforms_per_prompt_are_named_and_listed_by_prompt_and_index(pipeline_dir, prompts, tmp_path):
    cfg = GenerationConfig(steps=2, seconds=1.0, batch_size=4, waveforms_per_prompt=2)
    written = generate_files(pipeline_dir, prompts, tmp_path / "g", cfg)
    assert [p.name for p in written] == ["mix0_0.wav", "mix0_1.wav", "mix1_0.wav", "mix1_1.wav", "mix2_0.wav",
                                         "mix2_1.wav"]
    rows = [json.loads(line) for line in (tmp_path / "g" / "prompts.jsonl").read_text().splitlines()]
    assert [(r["id"], r["prompt_id"], r["waveform"]) for r in rows[:2]] == [("mix0_0", "mix0", 0),
                                                                           ("mix0_1", "mix0", 1)]
    assert rows[0]["seed"] == waveform_seed(0, "mix0", 0) != rows[1]["seed"]
    assert all(0.0 <= r["clipped"] <= 1.0 for r in rows)
    assert not np.array_equal(sf.read(written[0])[0], sf.read(written[1])[0])


def test_the_listing_carries_each_prompts_events_so_order_scores_every_file(pipeline_dir, tmp_path):
    from tclap_eval.order import read_requests

    prompts = tmp_path / "events.jsonl"
    prompts.write_text(json.dumps({"id": "a", "caption": CAPTIONS[0], "events": ["dog_bark", "bell"]}) + "\n"
                       + json.dumps({"id": "b", "caption": CAPTIONS[1]}) + "\n")
    assert read_prompts(prompts) == [Prompt("a", CAPTIONS[0], ["dog_bark", "bell"]), Prompt("b", CAPTIONS[1])]
    generate_files(pipeline_dir, prompts, tmp_path / "g", GenerationConfig(steps=2, seconds=1.0,
                                                                             waveforms_per_prompt=2))
    rows = [json.loads(line) for line in (tmp_path / "g" / "prompts.jsonl").read_text().splitlines()]
    assert [r.get("events") for r in rows] == [["dog_bark", "bell"], ["dog_bark", "bell"], None, None]
    only_a = tmp_path / "a_only.jsonl"  # the rows that have events are what eval/order.py scores
    only_a.write_text("".join(json.dumps(r) + "\n" for r in rows if "events" in r))
    assert read_requests(only_a) == {"a_0": ["dog_bark", "bell"], "a_1": ["dog_bark", "bell"]}


@pytest.mark.parametrize("events", [[], "dog_bark", ["dog_bark", ""], [3]])
def test_events_that_are_not_a_list_of_class_names_are_named(tmp_path, events):
    (tmp_path / "p.jsonl").write_text(json.dumps({"id": "a", "caption": "a beep", "events": events}) + "\n")
    with pytest.raises(DataError, match="p.jsonl:1: `events` must be a non-empty list of class names"):
        read_prompts(tmp_path / "p.jsonl")


def test_wavs_left_from_another_run_are_warned_about(pipeline_dir, prompts, tmp_path):
    out = tmp_path / "g"
    out.mkdir()
    (out / "old_prompt.wav").write_bytes(b"")
    with pytest.warns(UserWarning, match=r"1 WAV file\(s\) not written by this run \(e.g. old_prompt.wav\)"):
        generate_files(pipeline_dir, prompts, out, GenerationConfig(steps=2, seconds=1.0))


def test_clipped_share_counts_the_samples_beyond_one():
    assert clipped_share(np.array([0.5, -1.0, 1.2, -3.0, 0.0], dtype=np.float32)) == pytest.approx(2 / 5)
    assert clipped_share(np.zeros(0, dtype=np.float32)) == 0.0


def test_inputs_that_would_be_lost_or_paired_wrongly_are_refused_before_loading(tmp_path):
    prompts = tmp_path / "gen" / "prompts.jsonl"  # where the output listing goes
    prompts.parent.mkdir()
    prompts.write_text(json.dumps({"id": "p", "caption": "a beep"}) + "\n")
    with pytest.raises(DataError, match="is where the output listing goes"):
        generate_files(tmp_path / "no_such_pipeline", prompts, tmp_path / "gen")
    assert prompts.read_text().startswith('{"id": "p"')
    ambiguous = tmp_path / "a.jsonl"
    ambiguous.write_text("".join(json.dumps({"id": i, "caption": "a beep"}) + "\n" for i in ("p", "p_1")))
    with pytest.raises(DataError, match="prompt id 'p_1' is also the file name of a waveform of prompt 'p'"):
        generate_files(tmp_path / "no_such_pipeline", ambiguous, tmp_path / "out",
                       GenerationConfig(waveforms_per_prompt=2))
    for bad, message in ((dict(seconds=float("nan")), "seconds must be a positive number, not nan"),
                         (dict(seconds=float("inf")), "not inf"), (dict(steps=0), "steps must be at least 1, not 0")):
        with pytest.raises(DataError, match=message):
            GenerationConfig(**bad)
