"""`tclap experiment generation`: the offline analog of the paper's Table 4.

The prompts are held-out mixed-up clips' captions *and* their order-swapped twins, so every pair of
events is asked for in both orders (the test split also holds the phrasings reserved from training);
each prompt's reference is the clip that plays it (the mixed-up clip or its negative). Every pipeline
generates every prompt for each seed, and each (pipeline, seed) is scored with the measures below;
so are the references themselves and, as the ceiling of any UNet, the references passed through the
first pipeline's VAE and vocoder (`resynthesised`):

- order accuracy and the STEAM errors (`tclap_eval.order`) from the offline event detector;
- KL(reference ‖ generated) over the detector's clip-level class logits, clips paired by id;
- an FAD-like Fréchet distance over the detector's hidden-layer frame embeddings;
- CLAP score by a judging CLAP that conditions none of the pipelines.

Before order, the first rung: the single-event check asks every pipeline for each detector class
alone ("a sound of siren", a phrasing both offline CLAPs were trained on) and reports the share of
clips in which the detector finds that class (`single_event_found`).

The detector and its embeddings are offline stand-ins for PANNs and VGGish (`tclap_eval.embedders`), so
KL and FAD here are not comparable with published numbers. Finished generations are kept and
skipped on a rerun.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from audioldm_cond.generation import GenerationConfig, generate_files, waveform_stems
from audioldm_cond.ldm_training import PROVENANCE
from audioldm_cond.pipeline import load_pipeline, resynthesise
from tclap_eval.clap_score import check_judge, clap_scores
from tclap_eval.detector import EventDetector
from tclap_eval.embedders import MIN_SECONDS
from tclap_eval.frechet import embedding_frechet_distance
from tclap_eval.kl import paired_kl
from tclap_eval.order import order_accuracy, verdict_row, write_rows
from tclap.audio import load_audio
from tclap.data.orderfree import SINGLE
from tclap.data.phrasing import label_text
from tclap.environment import environment
from tclap.data.mixup import MANIFEST, read_manifest, read_settings
from tclap.embedding_cache import Embedder
from tclap.errors import DataError
from tclap.model import ClapEncoder, load_clap
from tclap.names import file_id

METRICS = ("order_accuracy", "non_detection", "occurrence_error", "overlap_error", "order_accuracy_seen",
           "order_accuracy_unseen", "kl", "fad", "clap_score")


@dataclass
class GenerationExperimentConfig:
    """What `tclap experiment generation` compares, and how it samples."""

    pipelines: dict[str, str] = field(default_factory=lambda: {
        "clap": "results/offline/audioldm_clap/pipeline", "tclap": "results/offline/audioldm_tclap/pipeline"})
    mixup: str = "results/offline/mixup"
    split: str = "test"
    clips: int = 24               # mixed-up clips taken from the split; each gives two prompts
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    detector: str = "results/offline/detector.pt"   # python eval/detector.py
    judge: str = "results/offline/seed1/control/final"  # a CLAP that conditions neither pipeline
    seconds: float = 4.0
    steps: int = 20
    guidance_scale: float = 2.5
    batch_size: int = 8
    single_event_waveforms: int = 4  # clips per class and seed in the single-event check
    single_event_references: int = 6  # library clips per class resynthesised for its ceiling
    device: str = "cpu"           # where the pipelines sample (noise is drawn on the CPU, so seeds agree)

    def __post_init__(self) -> None:
        for name in self.pipelines:  # each name is a folder under the output folder
            file_id(name, "generation.pipelines (--pipeline NAME=DIR)")
        if "resynthesised" in self.pipelines:
            raise DataError("generation.pipelines: 'resynthesised' is the name of the references' row")

    def sampling(self, seed: int, waveforms: int = 1) -> GenerationConfig:
        """The sampler settings of one seed's generations, `waveforms` per prompt."""
        return GenerationConfig(steps=self.steps, guidance_scale=self.guidance_scale, seconds=self.seconds,
                                batch_size=self.batch_size, seed=seed, waveforms_per_prompt=waveforms)


SINGLE_EVENT = SINGLE[1]  # "a sound of {0}": a single-event phrasing of the offline CLAPs' training captions
NEAR_SILENT_PEAK = 0.03   # a clip peaking below this (full scale 1) counts as near-silent


@dataclass(frozen=True)
class Prompt:
    id: str
    caption: str
    reference: Path            # the clip that plays the caption
    events: tuple[str, ...]    # categories in the order the caption asks for
    seen: bool                 # the phrasing occurs in training captions


def prompt_set(mixup_dir: str | Path, split: str, clips: int) -> list[Prompt]:
    """Each of the split's first `clips` clips as two prompts: its caption and its order-swapped one."""
    mixup_dir = Path(mixup_dir)
    records = [r for r in read_manifest(mixup_dir / MANIFEST) if r["split"] == split][:clips]
    if not records:
        raise DataError(f"{mixup_dir / MANIFEST}: no clips in split {split!r}")
    prompts = []
    for r in records:
        for suffix, caption, audio, events in (("", r["caption"], r["audio"], r["events"]),
                                               ("-swapped", r["neg_caption"], r["neg_audio"], r["neg_events"])):
            ordered = tuple(e["category"] for e in sorted(events, key=lambda e: e["onset"]))
            prompts.append(Prompt(r["id"] + suffix, caption, mixup_dir / audio, ordered, r["phrasing_seen"]))
    return prompts


@dataclass(frozen=True)
class DetectorView:
    """What the detector makes of a set of clips, computed once per set."""

    activity: list[np.ndarray]        # per clip, (T, C) booleans
    logits: dict[str, np.ndarray]     # prompt id -> clip-level class logits
    embeddings: np.ndarray            # all clips' frame embeddings, stacked


def decoded(paths: list[Path], sample_rate: int) -> list[np.ndarray]:
    """The clips decoded once at `sample_rate` (each at least MIN_SECONDS long), for every measure to share."""
    return [load_audio(p, sample_rate, MIN_SECONDS) for p in paths]


def detector_view(paths: list[Path], prompts: list[Prompt], detector: EventDetector) -> DetectorView:
    """Decode the clips (one per prompt, same order) and run the detector on each."""
    audio = decoded(paths, detector.sample_rate)
    return DetectorView([detector.activity(a) for a in audio],
                        {p.id: detector.class_logits(a) for p, a in zip(prompts, audio)},
                        np.concatenate([detector.frame_embeddings(a) for a in audio]))


def score_clips(paths: list[Path], prompts: list[Prompt], view: DetectorView, reference: DetectorView,
                detector: EventDetector, judge: Embedder) -> tuple[dict[str, float], list[dict]]:
    """All metrics for one set of clips (one per prompt, same order), and one row per clip.

    Args:
        paths: the clips.
        prompts: what each clip was asked to play.
        view: the detector's view of the clips.
        reference: the detector's view of the reference clips.
        detector: the event detector (its classes and frame rate).
        judge: embeddings of the judging CLAP.
    """
    index = {name: i for i, name in enumerate(detector.classes)}
    missing = sorted({e for p in prompts for e in p.events} - set(index))
    if missing:
        raise DataError(f"detector {detector.classes} lacks the prompts' classes {missing}")
    requests = [[index[e] for e in p.events] for p in prompts]
    scores, verdicts = order_accuracy(view.activity, requests)
    seen = np.array([p.seen for p in prompts])
    in_order = np.array([v.in_order for v in verdicts])
    metrics = {k: v for k, v in asdict(scores).items() if k != "clips"}
    metrics["order_accuracy_seen"] = float(in_order[seen].mean()) if seen.any() else float("nan")
    metrics["order_accuracy_unseen"] = float(in_order[~seen].mean()) if (~seen).any() else float("nan")
    metrics["kl"] = paired_kl(reference.logits, view.logits).softmax
    metrics["fad"] = embedding_frechet_distance(reference.embeddings, view.embeddings)
    cosines = clap_scores(judge, paths, [p.caption for p in prompts])
    metrics["clap_score"] = float(cosines.mean())
    rows = [{"id": p.id, "prompt": p.caption, "phrasing_seen": p.seen, "events": " > ".join(p.events),
             **verdict_row(v, detector.frame_seconds), "clap_score": round(float(c), 4)}
            for p, v, c in zip(prompts, verdicts, cosines)]
    return metrics, rows


def sample_std(values: np.ndarray) -> float:
    """The sample standard deviation over seeds (n - 1 in the denominator, as the encoder tables' `statistics.stdev`);
    0 for a single run."""
    return float(values.std(ddof=1)) if len(values) > 1 else 0.0


def summarise(per_seed: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Per model: the mean of each metric over seeds, and its sample standard deviation as `<metric>_std`."""
    summary = {}
    for model, runs in per_seed.items():
        row = {}
        for metric in METRICS:
            values = np.array([run[metric] for run in runs], dtype=float)
            row[metric], row[f"{metric}_std"] = float(values.mean()), sample_std(values)
        row["seeds"] = len(runs)
        summary[model] = row
    return summary


def table(summary: dict[str, dict[str, float]]) -> str:
    """Markdown: one row per model, percentages for the order figures, mean ± sample std over seeds."""
    header = ["model", "order acc %", "seen %", "unseen %", "non-det %", "occurrence %", "overlap %", "KL", "FAD",
              "CLAP score"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model, row in summary.items():
        def cell(metric, scale=100.0, digits=1):
            return f"{row[metric] * scale:.{digits}f} ± {row[metric + '_std'] * scale:.{digits}f}"
        lines.append("| " + " | ".join([
            model, cell("order_accuracy"), cell("order_accuracy_seen"), cell("order_accuracy_unseen"),
            cell("non_detection"), cell("occurrence_error"), cell("overlap_error"), cell("kl", 1, 3),
            cell("fad", 1, 3), cell("clap_score", 1, 3)]) + " |")
    return "\n".join(lines)


def conditioning_encoder(pipeline: str | Path) -> str | None:
    """The CLAP directory a pipeline written by train_audioldm.py was conditioned on (None if unrecorded)."""
    provenance = Path(pipeline) / PROVENANCE
    if not provenance.is_file():
        return None
    model = json.loads(provenance.read_text()).get("config", {}).get("model", {})
    cond = model.get("cond")
    return model.get(cond) or cond  # "clap"/"tclap" name a config key; `--cond PATH` is the encoder itself


def write_resynthesised(pipeline: str | Path, originals: list[Path], copies: list[Path],
                        seconds: float | None = None) -> list[Path]:
    """Each original (its first `seconds`, if given) through the pipeline's VAE and vocoder as the copy at the
    same position; kept on reruns (nothing is written when every copy exists)."""
    if not all(p.is_file() for p in copies):
        pipe = load_pipeline(pipeline)
        rate = pipe.vocoder.config.sampling_rate
        length = int(seconds * rate) if seconds is not None else None
        for original, copy in zip(originals, copies, strict=True):
            copy.parent.mkdir(parents=True, exist_ok=True)
            sf.write(copy, resynthesise(pipe, load_audio(original, rate, MIN_SECONDS)[:length]), rate)
    return copies


def generated(pipeline: str, prompts_file: Path, ids: list[str], folder: Path, cfg: GenerationExperimentConfig,
              seed: int, waveforms: int = 1) -> list[Path]:
    """`folder/<id>.wav` for each prompt id (`<id>_<k>.wav` with several waveforms), generated by `pipeline`
    with one seed's settings unless all are there already (a rerun only scores)."""
    paths = [folder / f"{stem}.wav" for i in ids for stem in waveform_stems(i, waveforms)]
    if not all(p.is_file() for p in paths):
        generate_files(pipeline, prompts_file, folder, cfg.sampling(seed, waveforms), cfg.device)
    return paths


def single_event_found(audio: list[np.ndarray], classes: list[str], detector: EventDetector) -> np.ndarray:
    """Per clip, whether the detector finds the one class it was asked for in any frame.

    Args:
        audio: generated clips, decoded at the detector's rate (`decoded`).
        classes: the class each clip was asked for (detector class names), same order.
        detector: the event detector.
    """
    index = {name: i for i, name in enumerate(detector.classes)}
    return np.array([bool(detector.activity(clip)[:, index[c]].any()) for clip, c in zip(audio, classes)])


def near_silent(audio: list[np.ndarray]) -> np.ndarray:
    """Per clip, whether its peak |sample| is below NEAR_SILENT_PEAK: quieter than any clip the offline
    generators train on, the usual way an offline UNet failed a single-event prompt.

    Args:
        audio: decoded clips (`decoded`).
    """
    return np.array([float(np.abs(clip).max()) < NEAR_SILENT_PEAK for clip in audio])


def run_single_event(out: Path, cfg: GenerationExperimentConfig, detector: EventDetector) -> dict[str, dict]:
    """Every pipeline asked for each detector class alone, `cfg.single_event_waveforms` clips per class and
    seed; per pipeline: the share of clips where that class is found (mean over seeds, `found_std`) and,
    per class, over all seeds and waveforms, and the share of near-silent clips."""
    prompts_file = out / "single_event_prompts.jsonl"
    prompts_file.write_text("".join(json.dumps({"id": f"single-{c}", "caption": SINGLE_EVENT.format(label_text(c))})
                                    + "\n" for c in detector.classes))
    n = cfg.single_event_waveforms
    classes = [c for c in detector.classes for _ in range(n)]  # the order `generated` lists the clips in
    results = {}
    for model, pipeline in cfg.pipelines.items():
        found, silent = [], []
        for seed in cfg.seeds:
            paths = generated(pipeline, prompts_file, [f"single-{c}" for c in detector.classes],
                              out / model / f"single_event_seed{seed}", cfg, seed, n)
            audio = decoded(paths, detector.sample_rate)
            found.append(single_event_found(audio, classes, detector))
            silent.append(near_silent(audio))
        per_seed = np.array(found).reshape(len(cfg.seeds), len(detector.classes), n)
        results[model] = {"found": float(per_seed.mean()), "found_std": sample_std(per_seed.mean(axis=(1, 2))),
                          "near_silent": float(np.mean(silent)), "clips": int(per_seed.size),
                          "per_class": {c: float(v) for c, v in zip(detector.classes, per_seed.mean(axis=(0, 2)))}}
    return results


def single_event_ceiling(out: Path, cfg: GenerationExperimentConfig, detector: EventDetector) -> dict[str, dict]:
    """The single-event check on real clips: up to `cfg.single_event_references` library files per class (the
    sources of the split's mixed-up clips, first `cfg.seconds`), as they are (`reference`) and through the
    first pipeline's VAE and vocoder (`resynthesised`: what a perfect UNet would give back)."""
    library = read_settings(cfg.mixup)["library"]
    sources: dict[str, list[str]] = {c: [] for c in detector.classes}
    for record in read_manifest(Path(cfg.mixup) / MANIFEST):
        for event in record["events"] if record["split"] == cfg.split else []:
            chosen = sources.get(event["category"])
            if chosen is not None and event["source"] not in chosen and len(chosen) < cfg.single_event_references:
                chosen.append(event["source"])
    classes = [c for c, files in sources.items() for _ in files]
    originals = [library / "audio" / f for files in sources.values() for f in files]
    copies = write_resynthesised(next(iter(cfg.pipelines.values())), originals,
                                 [out / "single_event_resynthesised" / f.name for f in originals], cfg.seconds)
    results = {}
    for name, paths in (("reference", originals), ("resynthesised", copies)):
        audio = decoded(paths, detector.sample_rate)
        found = single_event_found(audio, classes, detector)
        results[name] = {"found": float(found.mean()), "found_std": 0.0,
                         "near_silent": float(near_silent(audio).mean()), "clips": len(paths),
                         "per_class": {c: float(found[[i for i, x in enumerate(classes) if x == c]].mean())
                                       for c in detector.classes if c in classes}}
    return results


def single_event_table(results: dict[str, dict]) -> str:
    """Markdown: one row per clip set (the library references, their resynthesised copies, each pipeline),
    the share of clips whose class is found (mean ± sample std over seeds), the near-silent share, the clips
    behind them and the classes found in every clip."""
    lines = ["| clips | single event found % | near-silent % | clips | classes always found |", "|---|---|---|---|---|"]
    for model, row in results.items():
        always = sum(v == 1.0 for v in row["per_class"].values())
        lines.append(f"| {model} | {row['found'] * 100:.1f} ± {row['found_std'] * 100:.1f} | "
                     f"{row['near_silent'] * 100:.1f} | {row['clips']} | {always} of {len(row['per_class'])} |")
    return "\n".join(lines)


def run_generation(out: str | Path, cfg: GenerationExperimentConfig) -> dict:
    """Generate, score and write `metrics.json`, `table.md`, per-clip CSVs; returns the summary."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    encoders = [conditioning_encoder(p) for p in cfg.pipelines.values()]
    check_judge(cfg.judge, [e for e in encoders if e] + list(cfg.pipelines.values()))
    prompts = prompt_set(cfg.mixup, cfg.split, cfg.clips)
    (out / "prompts.jsonl").write_text("".join(json.dumps({"id": p.id, "caption": p.caption, "events": p.events})
                                               + "\n" for p in prompts))  # events: for python eval/order.py
    detector = EventDetector.load(cfg.detector)
    judge = Embedder(ClapEncoder(*load_clap(cfg.judge)))
    ref_paths = [p.reference for p in prompts]
    reference = detector_view(ref_paths, prompts, detector)
    per_seed: dict[str, list[dict[str, float]]] = {}
    ref_metrics, ref_rows = score_clips(ref_paths, prompts, reference, reference, detector, judge)
    write_rows(out / "reference_clips.csv", ref_rows)
    per_seed["reference"] = [ref_metrics]
    resynthesised = write_resynthesised(next(iter(cfg.pipelines.values())), [p.reference for p in prompts],
                                        [out / "resynthesised" / f"{p.id}.wav" for p in prompts])
    metrics, rows = score_clips(resynthesised, prompts, detector_view(resynthesised, prompts, detector), reference,
                                detector, judge)
    write_rows(out / "resynthesised" / "clips.csv", rows)
    per_seed["resynthesised"] = [metrics]
    for model, pipeline in cfg.pipelines.items():
        per_seed[model] = []
        for seed in cfg.seeds:
            folder = out / model / f"seed{seed}"
            paths = generated(pipeline, out / "prompts.jsonl", [p.id for p in prompts], folder, cfg, seed)
            metrics, rows = score_clips(paths, prompts, detector_view(paths, prompts, detector), reference,
                                        detector, judge)
            write_rows(folder / "clips.csv", rows)
            per_seed[model].append(metrics)
    summary = summarise(per_seed)
    single = {**single_event_ceiling(out, cfg, detector), **run_single_event(out, cfg, detector)}
    (out / "metrics.json").write_text(json.dumps({"config": asdict(cfg), "models": summary,
                                                  "per_seed": per_seed, "single_event": single,
                                                  "environment": environment()}, indent=2))
    (out / "table.md").write_text("Mean ± sample standard deviation over seeds.\n\n" + table(summary) + "\n\n"
                                  + single_event_table(single) + "\n")
    return summary
