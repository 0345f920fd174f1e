"""The Gradio demo: CLAP- vs T-CLAP-conditioned AudioLDM on event order, and blind MOS collection.

    python demo/app.py                      # the shipped offline checkpoints, on 127.0.0.1:7860
    tclap demo --pipeline A=DIR --pipeline B=DIR --host 0.0.0.0 --port 8080

Three tabs: Compare (one prompt, every pipeline, same seed; a button swaps the event order; audio,
spectrograms and detected events), Rate (blind, randomised MOS_r / MOS_t, 1-5) and Results (mean and
95% CI per model, CSV export). The app holds one `Studio`, one `RatingStore` and one rating set; all
model work is in `demo.studio`, none of it depends on Gradio.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a closed network

if __package__ in (None, ""):  # `python demo/app.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gradio as gr  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from audioldm_cond.samples import spectrogram_figure  # noqa: E402
from demo.rating_set import build_rating_set, presentation_order, read_clip, read_rating_set  # noqa: E402
from demo.ratings import RatingStore, check_rater, summaries, summary_table, validated  # noqa: E402
from demo.studio import SHIPPED, Clip, Settings, Studio, parse_pipelines, swapped_prompt  # noqa: E402
from tclap.config import section  # noqa: E402
from tclap.errors import DataError  # noqa: E402

log = logging.getLogger("tclap.demo")

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
    max_prompt_chars: int = 200
    concurrency: int = 1              # generations at once; the rest wait in the queue
    queue_size: int = 16
    host: str = "127.0.0.1"
    port: int = 7860


def figure_image(figure: plt.Figure) -> np.ndarray:
    """(H, W, 3) uint8 pixels of a matplotlib figure, then closes it."""
    figure.canvas.draw()
    pixels = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    plt.close(figure)
    return pixels


def events_text(clip: Clip) -> str:
    if not clip.events:
        return "detected events: none"
    return "detected events: " + ", ".join(f"{e.name} {e.start:.1f}-{e.end:.1f} s" for e in clip.events)


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

    def compare(self, prompt: str, seed: float, steps: float, guidance: float) -> list:
        try:
            settings = Settings(self.cfg.seconds, int(steps), float(guidance), int(seed))
            clips = self.studio.compare(prompt, settings)
        except DataError as error:
            raise gr.Error(str(error)) from None
        except Exception as error:  # a broken generation must not take the app down
            log.exception("generation failed for %r", prompt)
            raise gr.Error(f"generation failed: {type(error).__name__}: {error}") from None
        outputs = []
        for clip in clips:
            events = [(e.name, e.start, e.end) for e in clip.events]
            image = figure_image(spectrogram_figure(clip.audio, clip.sample_rate, f"{clip.model}: {prompt}", events))
            outputs += [(clip.sample_rate, clip.audio), image, events_text(clip)]
        return outputs

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
    def results(self) -> str:
        ratings = self.store.ratings()
        if not ratings:
            return "No ratings yet."
        return summary_table(summaries(ratings)) + f"\n\nRatings in all: {len(ratings)}."

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
                table = gr.Markdown(self.results(), elem_id="results")
                refresh = gr.Button("Refresh", elem_id="refresh")
                download = gr.File(label="ratings.csv", elem_id="csv")
                export = gr.Button("Export CSV", elem_id="export")
                refresh.click(self.results, outputs=table, concurrency_limit=None, api_visibility="private")
                export.click(self.export, outputs=download, concurrency_limit=None, api_visibility="private")
        return blocks

    def _compare_tab(self) -> None:
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
        generate.click(self.compare, inputs=[prompt, seed, steps, guidance], outputs=outputs, api_name="compare")
        prompt.submit(self.compare, inputs=[prompt, seed, steps, guidance], outputs=outputs, api_visibility="private")

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
    p.add_argument("--no-detector", action="store_true", help="draw no detected events")
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
