"""Paired KL divergence between classifier outputs on reference and generated clips (audioldm_eval).

audioldm_eval (`metrics/kl.py`) takes the PANNs CNN14 logits (before the sigmoid) of each
reference clip r and of the generated clip with the same file name g, and reports

    KL_softmax = 1/N sum_clips sum_classes p_r * (log p_r - log(p_g + 1e-6)),  p = softmax(logits)
    KL_sigmoid = the same sum with p = sigmoid(logits)      (element-wise, not a Bernoulli KL)

i.e. KL(reference || generated), the generated probabilities offset by 1e-6 before the log
(torch `kl_div(log(q + eps), p, reduction="sum") / N`). The paper's "KL" is the softmax one.
audioldm_eval pairs by base name and silently skips unmatched clips; we pair by file stem (so a
.wav reference may meet a .flac generation), refuse a set where fewer than 99 % of the clips pair
(the error lists the unmatched ones), and above that score the pairs with a warning naming the
rest, since a silent skip changes the score without a trace.
"""
from __future__ import annotations

import argparse
import json
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import expit, log_expit, log_softmax, softmax

from eval.embedders import audio_files, clip_logits, files_by_stem, load_scorer
from tclap.errors import DataError

EPS = 1e-6  # audioldm_eval's offset on the generated probabilities
NAMES_SHOWN = 5
MIN_PAIRED = 0.99  # share of all clips (reference or generated) that must find their partner


@dataclass(frozen=True)
class KLScores:
    """Both of audioldm_eval's KL figures, and the number of clip pairs behind them."""

    softmax: float
    sigmoid: float
    pairs: int


def _names(names: Iterable[str]) -> str:
    names = sorted(names)
    shown = ", ".join(names[:NAMES_SHOWN])
    return shown + (f" ... ({len(names)} in all)" if len(names) > NAMES_SHOWN else "")


def pair_by_stem(reference: Iterable[str | Path], generated: Iterable[str | Path]) -> list[tuple[Path, Path]]:
    """Match reference and generated files by file stem; at least 99 % of all files must find a partner.

    Args:
        reference: reference audio paths.
        generated: generated audio paths.

    Returns:
        (reference, generated) path pairs, sorted by stem.
    """
    ref, gen = files_by_stem(reference, "reference"), files_by_stem(generated, "generated")
    return [(ref[s], gen[s]) for s in sorted(_matched_stems(ref, gen))]


def _matched_stems(reference: Mapping[str, object], generated: Mapping[str, object]) -> set[str]:
    matched = set(reference) & set(generated)
    no_generation, no_reference = set(reference) - matched, set(generated) - matched
    problems = []
    if no_generation:
        problems.append(f"references with no generated clip: {_names(no_generation)}")
    if no_reference:
        problems.append(f"generated clips with no reference: {_names(no_reference)}")
    total = len(matched) + len(no_generation) + len(no_reference)
    if not total:
        raise DataError("KL: no clips to compare")
    if len(matched) < MIN_PAIRED * total:
        raise DataError(f"KL pairing by file stem failed ({len(matched)} of {total} clips paired, "
                        f"{MIN_PAIRED:.0%} needed); " + "; ".join(problems))
    if problems:
        warnings.warn(f"KL scores {len(matched)} pairs; unpaired: " + "; ".join(problems), stacklevel=3)
    return matched


def paired_kl(reference_logits: Mapping[str, np.ndarray], generated_logits: Mapping[str, np.ndarray]) -> KLScores:
    """audioldm_eval's KL(reference || generated), averaged over clips paired by stem.

    Args:
        reference_logits: stem -> (C,) classifier logits of a reference clip.
        generated_logits: stem -> (C,) logits of the generated clip with that stem.
    """
    stems = sorted(_matched_stems(reference_logits, generated_logits))
    ref = np.stack([np.asarray(reference_logits[s], dtype=np.float64) for s in stems])
    gen = np.stack([np.asarray(generated_logits[s], dtype=np.float64) for s in stems])
    if ref.shape != gen.shape or ref.ndim != 2:
        raise DataError(f"KL: logits must be (C,) vectors of one size; got reference {ref.shape[1:]}, "
                        f"generated {gen.shape[1:]}")
    p_soft, q_soft = softmax(ref, axis=1), softmax(gen, axis=1)
    kl_soft = np.sum(p_soft * (log_softmax(ref, axis=1) - np.log(q_soft + EPS)))
    p_sig, q_sig = expit(ref), expit(gen)
    kl_sig = np.sum(p_sig * (log_expit(ref) - np.log(q_sig + EPS)))
    return KLScores(softmax=float(kl_soft / len(stems)), sigmoid=float(kl_sig / len(stems)), pairs=len(stems))


def main(argv: list[str] | None = None) -> None:
    """`python eval/kl.py REFERENCE_DIR GENERATED_DIR --classifier panns:CKPT` (or detector:FILE offline)."""
    parser = argparse.ArgumentParser(description="Paired KL(reference || generated), audioldm_eval's definition.")
    parser.add_argument("reference", help="folder of reference clips")
    parser.add_argument("generated", help="folder of generated clips, named like their references")
    parser.add_argument("--classifier", required=True, help="panns:CNN14_16K_CKPT, or detector:FILE (offline)")
    args = parser.parse_args(argv)
    try:
        classifier = load_scorer(args.classifier, "class_logits")
        pairs = pair_by_stem(audio_files(args.reference), audio_files(args.generated))
        scores = paired_kl(clip_logits(classifier, [r for r, _ in pairs]), clip_logits(classifier, [g for _, g in pairs]))
    except DataError as error:
        parser.exit(2, f"kl: error: {error}\n")
    print(json.dumps({"kl": scores.softmax, "kl_sigmoid": scores.sigmoid, "pairs": scores.pairs}, indent=2))


if __name__ == "__main__":
    main()
