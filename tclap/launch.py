"""What every `accelerate launch` training script shares: its flags, and a one-line error exit.

train_tclap.py, train_vae.py and train_audioldm.py take the same `--config`, `--set SECTION.KEY=VALUE`,
`--output-dir` and `--resume`, and report bad input, a diverged run or a bad launch as one line with exit status 2.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from tclap.errors import DataError
from tclap.trainer import LaunchMismatch, TrainingDiverged


def training_parser(doc: str, sections: str, set_example: str) -> argparse.ArgumentParser:
    """The shared flags; a script adds its own after.

    Args:
        doc: the script's docstring (shown by --help).
        sections: the config's sections, for the --config help.
        set_example: an override worth showing, e.g. "loss.temporal_weight=0".
    """
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help=f"run config YAML (sections {sections})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help=f"override a config value; repeatable (e.g. --set {set_example})")
    parser.add_argument("--output-dir", help="shorthand for --set train.output_dir=...")
    parser.add_argument("--resume", help="'latest' or a checkpoint folder")
    return parser


def run_or_exit(program: str, job: Callable[[], Path]) -> Path:
    """Run `job`; on bad input, a non-finite loss or a bad launch print `program: error: ...` and exit 2."""
    try:
        return job()
    except (DataError, TrainingDiverged, LaunchMismatch) as error:
        print(f"{program}: error: {error}", file=sys.stderr)
        sys.exit(2)
