"""Train the mel VAE AudioLDM diffuses in (offline: `pipeline.tiny_vae()` on the mixed-up clips).

    accelerate launch train_vae.py --config configs/audioldm/vae_offline.yaml
    python train_vae.py --config configs/audioldm/vae_offline.yaml --set train.steps=1000 --resume latest

The final directory (`train.output_dir/final`) is an AutoencoderKL with `scaling_factor` set to
1 / std of its latents on training clips; `vae_summary.json` next to it holds the validation
reconstruction error (mean absolute log-mel error) and the training time.
"""
from __future__ import annotations

import argparse
import sys

from audioldm_cond.run_config import read_run_config
from audioldm_cond.vae_training import VaeRunConfig, run
from tclap.errors import DataError
from tclap.trainer import TrainingDiverged


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="run config YAML (sections model, data, train)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config value; repeatable (e.g. --set model.kl_weight=1e-4)")
    parser.add_argument("--output-dir", help="shorthand for --set train.output_dir=...")
    parser.add_argument("--resume", help="'latest' or a checkpoint folder")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        cfg = read_run_config(VaeRunConfig, args.config, args.overrides, args.output_dir)
        final = run(cfg, resume=args.resume, provenance={"command": " ".join(sys.argv)})
    except (DataError, TrainingDiverged) as error:
        print(f"train_vae: error: {error}", file=sys.stderr)
        sys.exit(2)
    print(f"final VAE: {final}")


if __name__ == "__main__":
    main()
