"""The Gradio demo: CLAP- vs T-CLAP-conditioned AudioLDM on event order, and blind MOS collection.

    python demo/app.py                      # the shipped offline checkpoints, on 127.0.0.1:7860
    tclap demo --pipeline A=DIR --pipeline B=DIR --host 0.0.0.0 --port 8080

Three tabs: Compare (one prompt, every pipeline, same seed; a button swaps the event order; audio,
spectrograms, detected events and the verdict "in order" / "wrong order" / "... not detected" / "events
overlap" per clip; or the prompt over N seeds, counted per pipeline), Rate (blind, randomised MOS_r /
MOS_t, 1-5) and Results (mean and 95% CI per model as a table and a bar chart, CSV export). The app holds
one `Studio`, one `RatingStore` and one rating set; all model work is in `tclap_demo.studio`, none of it
depends on Gradio.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a closed network

import gradio as gr  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from audioldm_cond.samples import spectrogram_figure  # noqa: E402
from tclap_demo.rating_set import build_rating_set, presentation_order, read_clip, read_rating_set  # noqa: E402
from tclap_demo.ratings import METRICS, RatingStore, Summary, check_rater, summaries, summary_table, validated  # noqa: E402
from tclap_demo.studio import SHIPPED, Clip, Settings, Studio, parse_pipelines, swapped_prompt, tally  # noqa: E402
from tclap.config import section  # noqa: E402
from tclap.data.phrasing import phrasings  # noqa: E402
from tclap.errors import DataError  # noqa: E402

log = logging.getLogger("tclap.demo")

SECONDS_PER_SEED = 1.4  # benchmarks/demo_compare.py: one seed of the shipped pair, 2 idle cores (2026-12-01)
EXAMPLES = ["siren followed by knock", "knock followed by siren", "bell and then beep", "beep and then bell",
            "a whistle, then a drum roll", "chirp after hum"]


@dataclass
class DemoConfig:
    """The `demo:` section of a config file; flags override it."""

    pipelines: dict[str, str] = field(default_factory=lambda: {"CLAP": str(SHIPPED / "clap"),
                                                               "T-CLAP": str(SHIPPED / "tclap")})
    detector: str | None = str(SHIPPED / "detector.pt")  # null: no event onsets
    rating_set: str | None = str(SHIPPED / "rating_set")  # made by the shipped pair; null: built at start
    rating_prompts: list[str] = field(default_factory=lambda: list(EXAMPLES))
    db: str = "results/demo/ratings.sqlite"
    seconds: float = 4.0
    steps: int = 20
    guidance_scale: float = 2.5
    seeds: int = 8                    # "Compare over N seeds": the default N (1-16)
    max_prompt_chars: int = 200
    concurrency: int = 1              # generations at once; the rest wait in the queue
    queue_size: int = 16
    host: str = "127.0.0.1"
    port: int = 7860


def spectrogram(clip: Clip, title: str) -> np.ndarray:
    """The clip's spectrogram with its detected events drawn on it, as pixels."""
    events = [(e.name, e.start, e.end) for e in clip.events]
    return figure_image(spectrogram_figure(clip.audio, clip.sample_rate, f"{clip.model}: {title}", events))


def figure_image(figure: plt.Figure) -> np.ndarray:
    """(H, W, 3) uint8 pixels of a matplotlib figure, then closes it."""
    figure.canvas.draw()
    pixels = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    plt.close(figure)
    return pixels


def events_text(clip: Clip) -> str:
    """The verdict (bold) over the list of detected events."""
    found = ", ".join(f"{e.name} {e.start:.1f}-{e.end:.1f} s" for e in clip.events) or "none"
    return (f"**{clip.verdict}**\n\n" if clip.verdict else "") + f"detected events: {found}"


def tally_text(clips: list[Clip], ordered: bool) -> str:
    """One pipeline's N-seed count: "**6 of 8 in order**; 1 wrong order, 0 overlap, 1 event missing", or
    for a prompt that asks for no order "**7 of 8 found**; 1 event missing"."""
    counts = tally(clips)
    judged = sum(counts.values())
    if not judged:
        return f"{len(clips)} clips; no verdict (no detector, or no known sound named)"
    if not ordered:
        return f"**{counts['in order']} of {judged} found**; {counts['event missing']} event missing"
    rest = ", ".join(f"{n} {kind}" for kind, n in counts.items() if kind != "in order")
    return f"**{counts['in order']} of {judged} in order**; {rest}"


def known_sounds_text(studio: Studio) -> str:
    """What the offline models can be asked for: the detector's classes and the trained phrasings."""
    if studio.known_classes is None:
        return ""
    ways = [p.template.format("A", "B", "C") for n in (2, 3) for p in phrasings(n, include_unseen=False)]
    return (f"This demo's models know only these sounds: {', '.join(studio.known_classes)}. "
            f"They were trained on prompts like {'; '.join(ways)} (A, B, C: one of those sounds), "
            "and on single sounds (\"a sound of siren\").")


def mos_chart(rows: list[Summary]) -> plt.Figure:
    """Grouped bars: per model, mean MOS_r and MOS_t with their 95% confidence intervals (none below 2 ratings)."""
    models = sorted({r.model for r in rows})
    figure, ax = plt.subplots(figsize=(6, 3))
    width = 0.8 / len(METRICS)
    for k, metric in enumerate(METRICS):
        cells = {r.model: r for r in rows if r.metric == metric}
        x = np.arange(len(models)) + (k - (len(METRICS) - 1) / 2) * width
        means = [cells[m].mean if m in cells else np.nan for m in models]
        errors = [cells[m].ci95 if m in cells and not np.isnan(cells[m].ci95) else 0.0 for m in models]
        ax.bar(x, means, width, yerr=errors, capsize=4, label=f"MOS_{metric.split('_')[1]}")
    ax.set_xticks(np.arange(len(models)), models)
    ax.set_ylim(0, 5.5)
    ax.set_ylabel("mean score (1-5), 95% CI")
    ax.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    return figure


class DemoApp:
    """The three tabs' callbacks over one Studio, one RatingStore and one rating set."""

    def __init__(self, studio: Studio, store: RatingStore, rating_set: dict, cfg: DemoConfig):
        self.studio, self.store, self.samples, self.cfg = studio, store, rating_set, cfg

    # --- Compare -------------------------------------------------------------------------------
    def swap(self, prompt: str) -> str:
        try:
            return swapped_prompt(self.studio.check_prompt(prompt))
        except DataError as error:
            raise gr.Error(str(error)) from None

    def _generated(self, make, prompt: str):
        """`make()`, with bad input and failed generations as messages in the page (the app keeps serving)."""
        try:
            return make()
        except DataError as error:
            raise gr.Error(str(error)) from None
        except Exception as error:  # a broken generation must not take the app down
            log.exception("generation failed for %r", prompt)
            raise gr.Error(f"generation failed: {type(error).__name__}: {error}") from None

    def _settings(self, seed: float, steps: float, guidance: float) -> Settings:
        return Settings(self.cfg.seconds, int(steps), float(guidance), int(seed))

    def compare(self, prompt: str, seed: float, steps: float, guidance: float) -> list:
        clips = self._generated(lambda: self.studio.compare(prompt, self._settings(seed, steps, guidance)), prompt)
        outputs = []
        for clip in clips:
            outputs += [(clip.sample_rate, clip.audio), spectrogram(clip, prompt), events_text(clip)]
        return outputs

    def compare_seeds(self, prompt: str, seed: float, steps: float, guidance: float, n: float) -> list:
        """Per pipeline: the count, a gallery of N spectrograms captioned with seed and verdict, an empty
        player; then the clips (for the players) and the time it took."""
        start = time.perf_counter()
        runs = self._generated(lambda: self.studio.compare_seeds(prompt, self._settings(seed, steps, guidance),
                                                                 int(n)), prompt)
        outputs, ordered = [], self.studio.request(prompt).ordered
        for clips in runs.values():
            gallery = [(spectrogram(clip, f"seed {clip.seed}"), f"seed {clip.seed}: {clip.verdict}") for clip in clips]
            outputs += [tally_text(clips, ordered), gallery, None]
        played = {name: [(clip.sample_rate, clip.audio) for clip in clips] for name, clips in runs.items()}
        return outputs + [played, f"{int(n)} seeds x {len(runs)} pipelines in {time.perf_counter() - start:.1f} s"]

    @staticmethod
    def player(name: str):
        """The gallery's select callback for pipeline `name`: plays the clicked clip."""
        def play(clips: dict, selected: gr.SelectData):
            return clips[name][selected.index]
        return play

    # --- Rate ----------------------------------------------------------------------------------
    def next_sample(self, rater: str) -> tuple:
        """The rater's next unrated sample: (sample id, progress, prompt, audio, cleared scores)."""
        try:
            rater = check_rater(rater)
        except DataError as error:
            raise gr.Error(str(error)) from None
        order = presentation_order(rater, self.samples)
        done = self.store.rated_by(rater)
        todo = [s for s in order if s not in done]
        if not todo:
            return None, f"All {len(order)} clips rated. Thank you!", "", None, None, None
        sample = self.samples[todo[0]]
        progress = f"Clip {len(order) - len(todo) + 1} of {len(order)}"
        return sample.sample, progress, f"**Text:** {sample.prompt}", read_clip(sample), None, None

    def submit(self, rater: str, sample_id: str | None, mos_r, mos_t) -> tuple:
        if not sample_id or sample_id not in self.samples:
            raise gr.Error("press Start first")
        sample = self.samples[sample_id]
        try:
            self.store.add(validated(rater, sample.sample, sample.model, sample.prompt, mos_r, mos_t))
        except DataError as error:
            raise gr.Error(str(error)) from None
        gr.Info("rating saved")
        return self.next_sample(rater)

    # --- Results -------------------------------------------------------------------------------
    def results(self) -> tuple[str, np.ndarray | None]:
        """The summary table and its bar chart (None before the first rating)."""
        ratings = self.store.ratings()
        if not ratings:
            return "No ratings yet.", None
        rows = summaries(ratings)
        return summary_table(rows) + f"\n\nRatings in all: {len(ratings)}.", figure_image(mos_chart(rows))

    def export(self) -> str:
        return str(self.store.export_csv(Path(tempfile.mkdtemp(prefix="tclap-ratings-")) / "ratings.csv"))

    # --- layout --------------------------------------------------------------------------------
    def blocks(self) -> gr.Blocks:
        with gr.Blocks(title="T-CLAP Studio", analytics_enabled=False) as blocks:
            gr.Markdown("# T-CLAP Studio\nDoes the generated clip play the events in the order the text says?")
            with gr.Tab("Compare"):
                self._compare_tab()
            with gr.Tab("Rate"):
                self._rate_tab()
            with gr.Tab("Results"):
                text, image = self.results()
                with gr.Row():
                    table = gr.Markdown(text, elem_id="results")
                    chart = gr.Image(image, label="MOS per model, 95% CI", type="numpy", interactive=False,
                                     elem_id="mos-chart")
                refresh = gr.Button("Refresh", elem_id="refresh")
                download = gr.File(label="ratings.csv", elem_id="csv")
                export = gr.Button("Export CSV", elem_id="export")
                refresh.click(self.results, outputs=[table, chart], concurrency_limit=None, api_visibility="private")
                export.click(self.export, outputs=download, concurrency_limit=None, api_visibility="private")
        return blocks

    def _compare_tab(self) -> None:
        if self.studio.known_classes is not None:
            gr.Markdown(known_sounds_text(self.studio), elem_id="known-sounds")
        with gr.Row():
            prompt = gr.Textbox(label="Prompt", value=EXAMPLES[0], max_lines=2, elem_id="prompt", scale=4)
            swap = gr.Button("Swap the order", elem_id="swap", scale=1)
        gr.Examples(EXAMPLES, inputs=prompt)
        with gr.Row():
            seed = gr.Number(label="Seed", value=0, precision=0, minimum=0)
            steps = gr.Slider(1, 100, value=self.cfg.steps, step=1, label="Steps")
            guidance = gr.Slider(0.0, 10.0, value=self.cfg.guidance_scale, step=0.5, label="Guidance scale")
        generate = gr.Button("Generate", variant="primary", elem_id="generate")
        outputs = []
        with gr.Row():
            for index, name in enumerate(self.studio.pipelines):
                with gr.Column():
                    gr.Markdown(f"### {name}")
                    outputs += [gr.Audio(label=name, type="numpy", interactive=False, elem_id=f"audio-{index}"),
                                gr.Image(label=f"{name} spectrogram", type="numpy", interactive=False,
                                         elem_id=f"spectrogram-{index}"),
                                gr.Markdown(elem_id=f"events-{index}")]
        swap.click(self.swap, inputs=prompt, outputs=prompt, concurrency_limit=None, api_visibility="private")
        inputs = [prompt, seed, steps, guidance]
        generate.click(self.compare, inputs=inputs, outputs=outputs, api_name="compare")
        prompt.submit(self.compare, inputs=inputs, outputs=outputs, api_visibility="private")

        gr.Markdown("### Over several seeds\nOne sample is noisy: generate the prompt with seeds *Seed* ... "
                    f"*Seed* + N - 1 and count the verdicts. Each seed costs what one Generate does "
                    f"(about {SECONDS_PER_SEED} s with the shipped pair at 20 steps on 2 CPU cores); "
                    "it waits in the same queue.")
        with gr.Row():
            n = gr.Slider(1, 16, value=self.cfg.seeds, step=1, label="N seeds", elem_id="n-seeds")
            many = gr.Button("Compare over N seeds", elem_id="compare-seeds")
            took = gr.Markdown(elem_id="seeds-time")
        clips = gr.State({})
        shown = []
        with gr.Row():
            for index, name in enumerate(self.studio.pipelines):
                with gr.Column():
                    gr.Markdown(f"### {name} over N seeds")
                    counts = gr.Markdown(elem_id=f"tally-{index}")
                    gallery = gr.Gallery(label=f"{name}: click a clip to play it", columns=4, height="auto",
                                         elem_id=f"gallery-{index}")
                    audio = gr.Audio(label=f"{name}: chosen seed", type="numpy", interactive=False,
                                     elem_id=f"seed-audio-{index}")
                    gallery.select(self.player(name), inputs=clips, outputs=audio, concurrency_limit=None,
                                   api_visibility="private")
                    shown += [counts, gallery, audio]
        many.click(self.compare_seeds, inputs=inputs + [n], outputs=shown + [clips, took], api_visibility="private")

    def _rate_tab(self) -> None:
        gr.Markdown("Rate each clip from 1 (bad) to 5 (excellent). You are not told which model made it.")
        with gr.Row():
            rater = gr.Textbox(label="Your rater id", max_lines=1, elem_id="rater")
            start = gr.Button("Start", elem_id="start")
        sample = gr.State(None)
        progress = gr.Markdown(elem_id="progress")
        text = gr.Markdown(elem_id="rate-prompt")
        audio = gr.Audio(label="Clip", type="numpy", interactive=False, elem_id="rate-audio")
        scores = [str(s) for s in range(1, 6)]
        mos_r = gr.Radio(scores, label="MOS_r: overall quality", elem_id="mos-r")
        mos_t = gr.Radio(scores, label="MOS_t: do the events come in the order the text says?", elem_id="mos-t")
        submit = gr.Button("Submit rating", variant="primary", elem_id="submit")
        shown = [sample, progress, text, audio, mos_r, mos_t]
        # Ratings only through the page: a script could otherwise fill the database (api_visibility="private").
        start.click(self.next_sample, inputs=rater, outputs=shown, concurrency_limit=None, api_visibility="private")
        submit.click(self.submit, inputs=[rater, sample, mos_r, mos_t], outputs=shown, concurrency_limit=None,
                     api_visibility="private")


def rating_set_for(studio: Studio, cfg: DemoConfig) -> dict:
    """The configured rating set, or one generated now from `rating_prompts` (kept next to the database)."""
    if cfg.rating_set:
        return read_rating_set(cfg.rating_set)
    settings = Settings(cfg.seconds, cfg.steps, cfg.guidance_scale, 0)
    key = json.dumps([cfg.pipelines, cfg.rating_prompts, asdict(settings)], sort_keys=True)
    folder = Path(cfg.db).parent / f"rating_set-{hashlib.sha1(key.encode()).hexdigest()[:10]}"
    if not (folder / "manifest.csv").is_file():
        build_rating_set(studio, cfg.rating_prompts, folder, settings)
    return read_rating_set(folder)


def build_app(cfg: DemoConfig) -> gr.Blocks:
    """Load everything `cfg` names and lay out the app (queued; not launched)."""
    studio = Studio.load(cfg.pipelines, cfg.detector, cfg.max_prompt_chars)
    app = DemoApp(studio, RatingStore(cfg.db), rating_set_for(studio, cfg), cfg)
    return app.blocks().queue(default_concurrency_limit=cfg.concurrency, max_size=cfg.queue_size)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tclap demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="YAML file with a `demo:` section (see configs/demo/offline.yaml)")
    p.add_argument("--pipeline", action="append", default=[], metavar="NAME=DIR",
                   help="a pipeline to compare (repeatable; replaces the shipped CLAP and T-CLAP pair)")
    p.add_argument("--detector", help="event detector file (eval/detector.py) for the onsets")
    p.add_argument("--no-detector", action="store_true",
                   help="no detected events, verdicts or known-sound check (for pipelines of other sounds than "
                        "the offline world's, e.g. hub-scale AudioLDMs)")
    p.add_argument("--rating-set", help="pre-generated rating set folder (demo/rating_set.py)")
    p.add_argument("--db", help="ratings database (SQLite)")
    p.add_argument("--steps", type=int, help="default denoising steps")
    p.add_argument("--host", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int)
    return p


def config_from_args(args: argparse.Namespace) -> DemoConfig:
    overrides = {"pipelines": parse_pipelines(args.pipeline) or None, "detector": args.detector,
                 "rating_set": args.rating_set, "db": args.db, "steps": args.steps, "host": args.host,
                 "port": args.port}
    cfg = section(DemoConfig, args.config, "demo", overrides)
    if args.no_detector:
        cfg.detector = None
    default = DemoConfig()
    same = {k: Path(v).resolve() for k, v in cfg.pipelines.items()} == \
        {k: Path(v).resolve() for k, v in default.pipelines.items()}
    if not same and cfg.rating_set == default.rating_set:
        cfg.rating_set = None  # the shipped set belongs to the shipped pair: build one for these pipelines
    return cfg


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO)
    try:
        cfg = config_from_args(parser().parse_args(argv))
        blocks = build_app(cfg)
    except DataError as error:
        print(f"tclap demo: error: {error}", file=sys.stderr)
        sys.exit(2)
    print(f"T-CLAP Studio on http://{cfg.host}:{cfg.port} (ratings in {cfg.db})", flush=True)
    blocks.launch(server_name=cfg.host, server_port=cfg.port, ssr_mode=False, show_error=True,
                  theme=gr.themes.Default(font=["sans-serif"], font_mono=["monospace"]))  # no web fonts offline


if __name__ == "__main__":
    main()
