"""Give a trained AudioLDM pipeline a fine-tuned VAE decoder, keeping its UNet.

A VAE whose decoder alone was fine-tuned (`python train_vae.py --config
configs/audioldm/vae_decoder_offline.yaml`) encodes exactly as the one the UNets were trained with,
so it can replace the pipeline's VAE without retraining anything (as Stability AI's `sd-vae-ft-mse`
replaced Stable Diffusion's decoder). The new pipeline is written to `--out` (which must not exist),
with the old folder's extra files (provenance, training curves) copied and the swap recorded in
`audioldm_provenance.json` under `vae_decoder`.

    python scripts/swap_vae_decoder.py --vae results/offline/vae_decoder/final \\
        --pipeline results/offline/audioldm_tclap/pipeline --out results/offline/shipped/tclap
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python scripts/swap_vae_decoder.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audioldm_cond.ldm_training import PROVENANCE  # noqa: E402
from audioldm_cond.pipeline import COMPONENT_FILES, load_component, load_pipeline, replace_vae_decoder, save_pipeline  # noqa: E402
from tclap.errors import DataError  # noqa: E402


def swap(pipeline: Path, vae_dir: Path, out: Path) -> Path:
    """Write `pipeline` with the VAE of `vae_dir` to `out` (which must not exist); returns `out`."""
    if out.exists():
        raise DataError(f"{out}: already exists; choose another --out")
    pipe = replace_vae_decoder(load_pipeline(pipeline), load_component("vae", vae_dir))
    save_pipeline(pipe, out)
    for extra in pipeline.iterdir():
        if extra.is_file() and extra.name != "model_index.json" and extra.name not in COMPONENT_FILES:
            shutil.copyfile(extra, out / extra.name)
    provenance = json.loads((out / PROVENANCE).read_text()) if (out / PROVENANCE).is_file() else {}
    provenance["vae_decoder"] = {"from": str(vae_dir), "replaced_in": str(pipeline)}
    (out / PROVENANCE).write_text(json.dumps(provenance, indent=2))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vae", type=Path, required=True, help="VAE directory with the fine-tuned decoder")
    parser.add_argument("--pipeline", type=Path, required=True, help="the trained pipeline directory")
    parser.add_argument("--out", type=Path, required=True, help="where to write the new pipeline")
    args = parser.parse_args(argv)
    try:
        print(f"wrote {swap(args.pipeline, args.vae, args.out)}")
    except DataError as error:
        parser.error(str(error))


if __name__ == "__main__":
    main()
