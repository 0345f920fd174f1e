"""Paired KL divergence between classifier outputs on reference and generated clips (audioldm_eval).

audioldm_eval (`metrics/kl.py`) takes the PANNs CNN14 logits (before the sigmoid) of each
reference clip r and of the generated clip with the same file name g, and reports

    KL_softmax = 1/N sum_clips sum_classes p_r * (log p_r - log(p_g + 1e-6)),  p = softmax(logits)
    KL_sigmoid = the same sum with p = sigmoid(logits)      (element-wise, not a Bernoulli KL)

i.e. KL(reference || generated), the generated probabilities offset by 1e-6 before the log
(torch `kl_div(log(q + eps), p, reduction="sum") / N`). The paper's "KL" is the softmax one.
audioldm_eval pairs by base name and silently skips unmatched clips; we pair by file stem (so a
.wav reference may meet a .flac generation; `<id>_<k>`, waveform k of `tclap generate
--waveforms-per-prompt`, pairs with reference `<id>`, each waveform one term of the mean), refuse
a set where fewer than 99 % of the clips pair (the error lists the unmatched ones), and above that
score the pairs with a warning naming the rest, since a silent skip changes the score without a
trace.
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

from tclap_eval.embedders import audio_files, clip_logits, files_by_stem, load_scorer, reference_stem
from tclap.audio import strict_audio
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
    """Match each generated file to its reference by stem (`tclap_eval.embedders.reference_stem`: the same
    stem, or `<id>_<k>` for waveform k of reference `<id>`); at least 99 % of all files must pair.

    Args:
        reference: reference audio paths.
        generated: generated audio paths.

    Returns:
        (reference, generated) path pairs, sorted by generated stem.
    """
    ref, gen = files_by_stem(reference, "reference"), files_by_stem(generated, "generated")
    links = _links(ref, gen)
    return [(ref[links[g]], gen[g]) for g in sorted(links)]


def _links(reference: Mapping[str, object], generated: Mapping[str, object]) -> dict[str, str]:
    """Generated stem -> reference stem for every generated clip that has a reference."""
    links = {g: r for g in generated if (r := reference_stem(g, reference)) is not None}
    no_generation, no_reference = set(reference) - set(links.values()), set(generated) - set(links)
    problems = []
    if no_generation:
        problems.append(f"references with no generated clip: {_names(no_generation)}")
    if no_reference:
        problems.append(f"generated clips with no reference: {_names(no_reference)}")
    total = len(links) + len(no_generation) + len(no_reference)  # a pair, or an unpaired file, counts once
    if not total:
        raise DataError("KL: no clips to compare")
    if len(links) < MIN_PAIRED * total:
        raise DataError(f"KL pairing by file stem failed ({len(links)} of {total} clips paired, "
                        f"{MIN_PAIRED:.0%} needed); " + "; ".join(problems))
    if problems:
        warnings.warn(f"KL scores {len(links)} pairs; unpaired: " + "; ".join(problems), stacklevel=3)
    return links


def paired_kl(reference_logits: Mapping[str, np.ndarray], generated_logits: Mapping[str, np.ndarray]) -> KLScores:
    """audioldm_eval's KL(reference || generated), averaged over clips paired by stem.

    Args:
        reference_logits: stem -> (C,) classifier logits of a reference clip.
        generated_logits: stem -> (C,) logits of a generated clip, paired with the reference of the
            same stem or, for `<id>_<k>`, of stem `<id>` (one term per generated waveform).
    """
    links = _links(reference_logits, generated_logits)
    stems = sorted(links)
    ref = np.stack([np.asarray(reference_logits[links[s]], dtype=np.float64) for s in stems])
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
    parser.add_argument("--strict", action="store_true",
                        help="a WAV file shorter than its header declares is an error, not a warning")
    args = parser.parse_args(argv)
    if args.strict:
        strict_audio()
    try:
        classifier = load_scorer(args.classifier, "class_logits")
        pairs = pair_by_stem(audio_files(args.reference), audio_files(args.generated))
        references = list(dict.fromkeys(r for r, _ in pairs))  # a reference of several waveforms is scored once
        scores = paired_kl(clip_logits(classifier, references), clip_logits(classifier, [g for _, g in pairs]))
    except DataError as error:
        parser.error(str(error))
    print(json.dumps({"kl": scores.softmax, "kl_sigmoid": scores.sigmoid, "pairs": scores.pairs}, indent=2))


if __name__ == "__main__":
    main()
