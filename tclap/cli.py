"""The `tclap` command: one subcommand per job, each a thin wrapper over the library."""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path

from tclap.errors import DataError


def _synth_world(args: argparse.Namespace) -> None:
    from tclap.config import section
    from tclap.data.synth import SynthConfig, synthesize_world

    cfg = section(SynthConfig, args.config, "synth", {
        "classes": args.classes, "files_per_class": args.files_per_class, "sample_rate": args.sample_rate,
        "duration": args.duration, "seed": args.seed})
    print(f"wrote sound world to {synthesize_world(args.out, cfg)}")


def _mixup(args: argparse.Namespace) -> None:
    from tclap.config import section
    from tclap.data.mixup import MixupConfig, build_mixup

    cfg = section(MixupConfig, args.config, "mixup", {
        "clips": args.clips, "events": args.events, "clip_seconds": args.clip_seconds,
        "sample_rate": args.sample_rate, "crossfade_seconds": args.crossfade, "seed": args.seed,
        "skip_bad_files": False if args.strict else None})
    start = time.perf_counter()
    report = build_mixup(args.library, args.out, cfg, workers=args.workers)
    seconds = time.perf_counter() - start
    print(f"built {report.built} clips, kept {report.reused} from an earlier run "
          f"({report.built / seconds:.1f} clips/s); per split: {dict(report.per_split)}")
    if report.skipped_files:
        print(f"skipped {len(report.skipped_files)} unusable source file(s):")
        for path, reason in report.skipped_files.items():
            print(f"  {reason}")


def _llm_backend(args: argparse.Namespace):
    from tclap.data.llm_negatives import LLMBackend, LocalCausalLMClient, OpenAIChatClient

    if bool(args.llm_url) == bool(args.llm_local):
        raise DataError("--backend llm needs exactly one of --llm-url (with --llm-model) or --llm-local")
    if args.llm_url:
        if not args.llm_model:
            raise DataError("--llm-url needs --llm-model")
        client = OpenAIChatClient(args.llm_url, args.llm_model, api_key=os.environ.get(args.llm_api_key_env))
    else:
        client = LocalCausalLMClient(args.llm_local)
    return LLMBackend(client, cache_path=args.llm_cache, requests_per_second=args.llm_rps)


def _backend(args: argparse.Namespace):
    from tclap.data.negatives import RuleBackend

    return RuleBackend() if args.backend == "rule" else _llm_backend(args)


def _negatives(args: argparse.Namespace) -> None:
    from tclap.data.captions import read_captions
    from tclap.data.negatives_job import write_negatives

    rows = read_captions(args.captions, audio_name=args.audio_name)
    counts = write_negatives(rows, _backend(args), args.out, batch_size=args.batch_size)
    swapped, reused = counts.pop("swapped", 0), counts.pop("reused", 0)
    print(f"{args.out}: {swapped} negatives written, {sum(counts.values())} captions not swappable, "
          f"{reused} kept from an earlier run")
    for reason, n in counts.most_common():
        print(f"  {n:6d}  {reason}")


def _negatives_eval(args: argparse.Namespace) -> None:
    from tclap.data.negatives_eval import LABELLED_SET, evaluate_backend

    report = evaluate_backend(_backend(args), args.labelled or LABELLED_SET)
    print(f"precision {report['precision']:.1%} ({report['correct']}/{report['produced']}), "
          f"coverage {report['coverage']:.1%} ({report['correct']}/{report['swappable']}), "
          f"false swaps {report['false_swaps']} on {report['items']} labelled captions")
    for kind, counts in report["per_kind"].items():
        print(f"  {kind:13s} {counts}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2))


def _shards(args: argparse.Namespace) -> None:
    from tclap.data.datasets import mixup_rows, read_pairs
    from tclap.data.shards import write_shards

    if bool(args.mixup) == bool(args.pairs):
        raise DataError("give exactly one of --mixup DIR or --pairs FILE")
    rows = mixup_rows(args.mixup, args.split)[0] if args.mixup else read_pairs(args.pairs, args.audio_root)
    paths = write_shards(rows, args.out, shard_size=args.shard_size)
    print(f"wrote {len(rows)} samples in {len(paths)} shard(s) to {args.out}")


def _convert_laion(args: argparse.Namespace) -> None:
    from transformers import ClapConfig

    from tclap.convert_laion import convert_laion_checkpoint

    config = ClapConfig.from_pretrained(args.config) if args.config else None
    convert_laion_checkpoint(args.checkpoint, args.out, config, trust_pickle=args.trust_pickle)
    print(f"wrote {args.out}; save the matching ClapProcessor next to it (e.g. from laion/clap-htsat-unfused)")


def _order_free_pairs(args: argparse.Namespace) -> None:
    from tclap.data.orderfree import write_order_free_pairs

    n = write_order_free_pairs(args.mixup, args.out, split=args.split, seed=args.seed, kinds=tuple(args.kinds))
    print(f"wrote {n} order-free audio-caption pairs to {args.out}")


def _evaluate(args: argparse.Namespace) -> None:
    from tclap.eval_suite import evaluate_models, read_test_sets

    if args.vggsound_name and args.zeroshot_layout != "vggsound":
        raise DataError("--vggsound-name needs --zeroshot-layout vggsound")
    sets = read_test_sets(mixup=args.mixup, split=args.split, pairs=args.pairs, audio_root=args.audio_root,
                          zeroshot=args.zeroshot, zeroshot_layout=args.zeroshot_layout, prompt=args.prompt,
                          zeroshot_options={"name_pattern": args.vggsound_name} if args.vggsound_name else None,
                          compa_order=args.compa_order)
    evaluate_models(args.model, args.out, sets, cache=args.cache, batch_size=args.batch_size, device=args.device)
    print((args.out / "table.md").read_text(), end="")
    print(f"wrote {args.out / 'metrics.json'}, {args.out / 'table.md'}")


def _experiment(args: argparse.Namespace) -> None:
    if args.name == "generation":
        return _generation_experiment(args)
    from tclap.config import default_config
    from tclap.experiment import ExperimentConfig, run_offline

    experiment = ExperimentConfig(baseline_steps=args.baseline_steps, tclap_steps=args.tclap_steps,
                                  parallel_runs=args.parallel_runs)
    if args.seeds:
        experiment.seeds = args.seeds
    if args.tclap_config:
        experiment.tclap = str(args.tclap_config)
    run_offline(args.out or Path("results/offline"), args.config or default_config("data/offline.yaml"),
                workers=args.workers, library=args.library, clips=args.clips, experiment=experiment)


def _generation_experiment(args: argparse.Namespace) -> None:
    from tclap_demo.studio import parse_pipelines
    from tclap_eval.generation_experiment import GenerationExperimentConfig, run_generation
    from tclap.config import section

    overrides = {"pipelines": parse_pipelines(args.pipeline) or None, "clips": args.clips,
                 "seeds": args.seeds, "steps": args.steps,
                 "detector": args.detector, "judge": args.judge, "device": args.device}
    cfg = section(GenerationExperimentConfig, args.config, "generation", overrides)
    out = args.out or Path("results/generation")
    run_generation(out, cfg)
    print((out / "table.md").read_text())


def _generate(args: argparse.Namespace) -> None:
    from audioldm_cond.generation import GenerationConfig, generate_files

    cfg = GenerationConfig(steps=args.steps, guidance_scale=args.guidance_scale, seconds=args.seconds,
                           batch_size=args.batch_size, seed=args.seed, scheduler=args.scheduler,
                           negative_prompt=args.negative_prompt, waveforms_per_prompt=args.waveforms_per_prompt)
    written = generate_files(args.pipeline, args.prompts, args.out, cfg, device=args.device)
    print(f"wrote {len(written)} clips to {args.out}")


def _ratings(args: argparse.Namespace) -> None:
    from tclap_demo.ratings import RatingStore, summaries, summary_table

    if not args.db.is_file():
        raise DataError(f"{args.db}: ratings database not found")
    store = RatingStore(args.db)
    ratings = store.ratings()
    print(summary_table(summaries(ratings)) if ratings else "no ratings yet")
    if args.csv:
        print(f"wrote {len(ratings)} ratings to {store.export_csv(args.csv)}")


def _add_backend_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=["rule", "llm"], default="rule",
                        help="rule-based swapper, or an LLM whose answers are validated (default: rule)")
    llm = parser.add_argument_group("LLM backend")
    llm.add_argument("--llm-url", help="OpenAI-compatible endpoint root, e.g. http://127.0.0.1:8000/v1")
    llm.add_argument("--llm-model", help="model name the endpoint serves")
    llm.add_argument("--llm-api-key-env", default="OPENAI_API_KEY", help="environment variable holding the key")
    llm.add_argument("--llm-local", help="local transformers causal LM directory instead of an endpoint")
    llm.add_argument("--llm-cache", type=Path, help="SQLite answer cache (reruns ask nothing twice)")
    llm.add_argument("--llm-rps", type=float, help="maximum requests per second")


# Commands whose module has its own `main(argv)`: `tclap NAME ...` is `python MODULE ...`.
HANDED_OFF = {
    "demo": ("tclap_demo.app", "the Gradio demo: compare pipelines on event order, collect MOS ratings"),
    "kl": ("tclap_eval.kl", "paired KL(reference || generated) of two folders of clips (eval/kl.py)"),
    "fad": ("tclap_eval.frechet", "Frechet distance of two folders' audio embeddings (eval/frechet.py)"),
    "order": ("tclap_eval.order", "event-order accuracy of generated clips (eval/order.py)"),
    "detector": ("tclap_eval.detector", "train the offline event detector (eval/detector.py)"),
    "diagnose": ("audioldm_cond.diagnosis", "per-noise-level errors of an AudioLDM UNet on held-out clips"),
}


def _add_synth_world(commands) -> None:
    """`tclap synth-world`."""
    p = commands.add_parser("synth-world", help="write the synthesised sound library (ESC-50 layout)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--config", type=Path, help="YAML with a `synth:` section")
    p.add_argument("--classes", nargs="+", help="subset of classes (default: all)")
    p.add_argument("--files-per-class", type=int)
    p.add_argument("--sample-rate", type=int)
    p.add_argument("--duration", type=float, help="seconds per file")
    p.add_argument("--seed", type=int)
    p.set_defaults(run=_synth_world)


def _add_mixup(commands) -> None:
    """`tclap mixup`."""
    p = commands.add_parser("mixup", help="build mixed-up clips with negative captions and audio")
    p.add_argument("--library", required=True, type=Path, help="sound library in ESC-50 layout")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--config", type=Path, help="YAML with a `mixup:` section (e.g. configs/data/offline.yaml)")
    p.add_argument("--clips", type=int, help="total clips over train/val/test")
    p.add_argument("--events", type=int, nargs="+", choices=[2, 3], help="event counts to draw from")
    p.add_argument("--clip-seconds", type=float)
    p.add_argument("--sample-rate", type=int)
    p.add_argument("--crossfade", type=float, help="maximum overlap of consecutive events, seconds")
    p.add_argument("--seed", type=int)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--strict", action="store_true", help="stop at the first unusable source file")
    p.set_defaults(run=_mixup)


def _add_negatives(commands) -> None:
    """`tclap negatives`."""
    p = commands.add_parser("negatives", help="write order-swapped negative captions for a caption file")
    p.add_argument("--captions", required=True, type=Path,
                   help="AudioCaps or Clotho CSV, JSONL with `caption`, or .txt with one caption per line")
    p.add_argument("--out", required=True, type=Path, help="JSONL output (resumed if it exists)")
    p.add_argument("--audio-name", help="format string for the audio file name, over the CSV's columns")
    p.add_argument("--batch-size", type=int, default=32)
    _add_backend_flags(p)
    p.set_defaults(run=_negatives)


def _add_negatives_eval(commands) -> None:
    """`tclap negatives-eval`."""
    p = commands.add_parser("negatives-eval", help="precision and coverage of a backend on the labelled set")
    p.add_argument("--labelled", type=Path, help="labelled JSONL (default: the shipped set)")
    p.add_argument("--out", type=Path, help="write the full report (with every mistake) as JSON")
    _add_backend_flags(p)
    p.set_defaults(run=_negatives_eval)


def _add_shards(commands) -> None:
    """`tclap shards`."""
    p = commands.add_parser("shards", help="pack a dataset into webdataset tar shards")
    p.add_argument("--mixup", type=Path, help="mixed-up clip folder")
    p.add_argument("--split", choices=["train", "val", "test"], help="with --mixup: one split only")
    p.add_argument("--pairs", type=Path, help="audio-caption manifest (CSV/JSONL: audio, caption[, negative])")
    p.add_argument("--audio-root", type=Path, help="with --pairs: folder audio paths are relative to")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--shard-size", type=int, default=1000)
    p.set_defaults(run=_shards)


def _add_order_free_pairs(commands) -> None:
    """`tclap order-free-pairs`."""
    p = commands.add_parser("order-free-pairs", help="order-free captions of a mixup split (baseline CLAP data)")
    p.add_argument("--mixup", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--split", default="train", choices=["train", "val", "test"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kinds", nargs="+", default=["mixup", "single"], choices=["mixup", "single"],
                   help="mixed-up clips, single events (the library files of the split's folds), or both")
    p.set_defaults(run=_order_free_pairs)


def _add_convert_laion(commands) -> None:
    """`tclap convert-laion`."""
    p = commands.add_parser("convert-laion", help="import an original LAION-CLAP .pt checkpoint as a ClapModel dir")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--config", help="ClapConfig dir or hub id (default: laion/clap-htsat-unfused's architecture)")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow arbitrary pickled objects in the file (only for files you trust)")
    p.set_defaults(run=_convert_laion)


def _add_evaluate(commands) -> None:
    """`tclap evaluate`."""
    p = commands.add_parser("evaluate", help="T-Classify, retrieval and zero-shot scores of CLAP checkpoints")
    p.add_argument("--model", required=True, nargs="+", type=Path, help="checkpoint directories")
    p.add_argument("--out", required=True, type=Path, help="folder for metrics.json, table.md, margins.png")
    p.add_argument("--mixup", type=Path, help="folder built by `tclap mixup`: T-Classify, CompA-order, retrieval")
    p.add_argument("--split", default="test", choices=["train", "val", "test"], help="with --mixup")
    p.add_argument("--pairs", type=Path, help="caption manifest (CSV/JSONL: audio, caption[, negative]): retrieval")
    p.add_argument("--compa-order", type=Path, help="the CompA-order benchmark CSV (pair_file, reversed_pair_file, "
                                                    "pair_caption, reversed_pair_caption): its text/audio/group scores")
    p.add_argument("--audio-root", type=Path, help="with --pairs or --compa-order: folder audio paths are relative to "
                                                   "(default: the file's folder)")
    p.add_argument("--zeroshot", type=Path, help="zero-shot classification set root")
    p.add_argument("--zeroshot-layout", default="esc50", choices=["esc50", "us8k", "vggsound"])
    p.add_argument("--prompt", default="A sound of {label}", help="zero-shot text template")
    p.add_argument("--vggsound-name", help="VGGSound audio file name pattern "
                                           "(default {youtube_id}_{start_seconds:06d}.wav)")
    p.add_argument("--cache", type=Path, help="embedding cache folder (reruns compute nothing twice)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    p.set_defaults(run=_evaluate)


def _add_generate(commands) -> None:
    """`tclap generate`."""
    p = commands.add_parser("generate", help="text-to-audio with an AudioLDM pipeline directory, one WAV per prompt")
    p.add_argument("--pipeline", required=True, help="pipeline directory (train_audioldm.py output) or hub id")
    p.add_argument("--prompts", required=True, type=Path,
                   help=".txt (one per line), .csv/.jsonl with id, caption (and events), or AudioTime captions (.json)")
    p.add_argument("--out", required=True, type=Path, help="folder for <id>.wav and the listing prompts.jsonl")
    p.add_argument("--steps", type=int, default=50, help="denoising steps (default %(default)s)")
    p.add_argument("--guidance-scale", type=float, default=2.5,
                   help="classifier-free guidance weight (default %(default)s)")
    p.add_argument("--seconds", type=float, default=5.0,
                   help="clip duration (default %(default)s; the offline pipelines: 4)")
    p.add_argument("--batch-size", type=int, default=4, help="prompts per pipeline call (default %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="waveform k of prompt ID is seeded from (seed, ID, k), whatever the batching "
                        "(default %(default)s)")
    p.add_argument("--waveforms-per-prompt", type=int, default=1,
                   help="N > 1 writes ID_0.wav ... ID_{N-1}.wav per prompt (diffusers' num_waveforms_per_prompt)")
    p.add_argument("--scheduler", default="ddim", help="ddim or dpm-solver++ (default %(default)s)")
    p.add_argument("--negative-prompt", help="text to guide away from (classifier-free guidance's negative)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default %(default)s)")
    p.set_defaults(run=_generate)


def _add_experiment(commands) -> None:
    """`tclap experiment`."""
    p = commands.add_parser("experiment", help="run an end-to-end recipe: offline (paper Table 3: world, data, "
                                               "CLAPs, encoder evaluation) or generation (Table 4: KL, FAD, order)")
    p.add_argument("name", choices=["offline", "generation"])
    p.add_argument("--out", type=Path, help="output folder (default: results/offline or results/generation)")
    p.add_argument("--config", type=Path, help="offline: data config (default configs/data/offline.yaml); "
                                               "generation: a YAML file with a `generation:` section")
    p.add_argument("--seeds", type=int, nargs="+",
                   help="training (offline, default 0 1) or sampling (generation, default 0 1 2) seeds")
    p.add_argument("--clips", type=int, help="offline: mixed-up clips over train/val/test (default: the config's); "
                                             "generation: test clips to take, two prompts each (default 24)")
    offline = p.add_argument_group("offline")
    offline.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                         help="processes for building the mixed-up clips (default: all cores)")
    offline.add_argument("--library", type=Path, help="sound library in ESC-50 layout instead of the synthesised world")
    offline.add_argument("--baseline-steps", type=int, help="baseline CLAP steps (default: its run config's)")
    offline.add_argument("--tclap-steps", type=int, help="T-CLAP and control steps (default: their run config's)")
    offline.add_argument("--parallel-runs", type=int, default=2,
                         help="training runs side by side, one thread each (default 2, for 2 cores)")
    offline.add_argument("--tclap-config", type=Path, help="run config of T-CLAP and the control (default "
                                                           "configs/tclap/offline.yaml; offline_long.yaml learns order)")
    generation = p.add_argument_group("generation")
    generation.add_argument("--pipeline", action="append", default=[], metavar="NAME=DIR",
                            help="a pipeline to score (repeatable; default: the two offline AudioLDMs)")
    generation.add_argument("--steps", type=int, help="denoising steps (default 20)")
    generation.add_argument("--detector", help="event detector file (default results/offline/detector.pt)")
    generation.add_argument("--judge", help="CLAP that scores prompt-clip match; must condition no pipeline")
    generation.add_argument("--device", help="torch device the pipelines sample on (default cpu)")
    p.set_defaults(run=_experiment)


def _add_handed_off(commands) -> None:
    """The commands whose own scripts parse their arguments (see `main`)."""
    for name, (_, purpose) in HANDED_OFF.items():  # their own parsers take the rest of the line (see main)
        commands.add_parser(name, help=f"{purpose} (tclap {name} --help)", add_help=False)


def _add_ratings(commands) -> None:
    """`tclap ratings`."""
    p = commands.add_parser("ratings", help="MOS summary (mean, 95%% CI per model) and CSV export of a demo database")
    p.add_argument("db", type=Path, help="the demo's SQLite file (default place: results/demo/ratings.sqlite)")
    p.add_argument("--csv", type=Path, help="write every rating to this CSV file")
    p.set_defaults(run=_ratings)


def build_parser() -> argparse.ArgumentParser:
    """The `tclap` parser: one sub-parser per command, each added by its `_add_<command>` function."""
    parser = argparse.ArgumentParser(prog="tclap", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_synth_world, _add_mixup, _add_negatives, _add_negatives_eval, _add_shards, _add_order_free_pairs,
                _add_convert_laion, _add_evaluate, _add_generate, _add_experiment, _add_handed_off, _add_ratings):
        add(commands)
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in HANDED_OFF:
        module = importlib.import_module(HANDED_OFF[argv[0]][0])
        program, sys.argv[0] = sys.argv[0], f"tclap {argv[0]}"  # argparse names the program after argv[0]
        try:
            return module.main(argv[1:])
        finally:
            sys.argv[0] = program
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except DataError as error:
        print(f"tclap {args.command}: error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
