"""Fréchet distance between Gaussian fits of two embedding sets: the core of FAD.

FAD (as audioldm_eval computes it) pools the VGGish frame embeddings of every clip in a set, fits
one Gaussian (mean, covariance with N-1 normalisation) per set and reports
d² = ||mu1 - mu2||² + Tr(S1 + S2 - 2 (S1 S2)^½). The matrix square root is scipy's `sqrtm`; when
S1 S2 is singular or ill-conditioned (fewer clips than dimensions) it can come back non-finite
or inaccurate, so, as pytorch-fid does, we retry with eps added to both diagonals, and say so in a
warning of our own (scipy's `LinAlgWarning` is kept out of the output). Rounding can leave d²
slightly below 0 for two identical sets; a distance is never negative, so the result is clamped at 0.
"""
from __future__ import annotations

import argparse
import json
import warnings

import numpy as np
from scipy import linalg

from tclap_eval.embedders import audio_files, load_scorer, pooled_embeddings
from tclap.audio import strict_audio
from tclap.errors import DataError

IMAGINARY_TOLERANCE = 1e-3  # sqrtm of a product of PSD matrices is real up to rounding


def gaussian_fit(embeddings: np.ndarray, name: str = "embeddings") -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (rows are samples, N-1 normalisation) of one embedding set.

    Args:
        embeddings: (N, D) array, N >= 2.
        name: what the set is, for error messages.
    """
    embeddings = np.asarray(embeddings, dtype=np.float64)
    if embeddings.ndim != 2 or embeddings.shape[0] < 2:
        raise DataError(f"{name}: need at least 2 embeddings (an (N, D) array with N >= 2) to fit a "
                        f"Gaussian, got shape {embeddings.shape}")
    if not np.isfinite(embeddings).all():
        raise DataError(f"{name}: contains NaN or infinite values")
    return embeddings.mean(axis=0), np.atleast_2d(np.cov(embeddings, rowvar=False))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

    Args:
        mu1, sigma1: mean (D,) and covariance (D, D) of the first Gaussian.
        mu2, sigma2: the same for the second.
        eps: diagonal offset used only when the plain square root is not finite.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise DataError(f"Fréchet distance: shapes differ: mu {mu1.shape} vs {mu2.shape}, "
                        f"sigma {sigma1.shape} vs {sigma2.shape}")
    covmean, ill_conditioned = _sqrtm(sigma1 @ sigma2)
    if ill_conditioned or not np.isfinite(covmean).all():
        warnings.warn(f"Fréchet distance: the covariance product is singular or ill-conditioned; "
                      f"regularised with {eps:g} added to both diagonals (as pytorch-fid)", stacklevel=2)
        offset = eps * np.eye(len(mu1))
        covmean, _ = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if np.abs(covmean.imag).max() > IMAGINARY_TOLERANCE * max(1.0, np.abs(covmean.real).max()):
            raise DataError(f"Fréchet distance: sqrtm has a large imaginary part "
                            f"({np.abs(covmean.imag).max():.3g}); covariances are not PSD")
        covmean = covmean.real
    diff = mu1 - mu2
    return max(0.0, float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)))


def _sqrtm(matrix: np.ndarray) -> tuple[np.ndarray, bool]:
    """scipy's matrix square root, and whether scipy warned that it is ill-conditioned."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", linalg.LinAlgWarning)
        root = linalg.sqrtm(matrix)
    return root, any(issubclass(w.category, linalg.LinAlgWarning) for w in caught)


def embedding_frechet_distance(reference: np.ndarray, generated: np.ndarray,
                               names: tuple[str, str] = ("reference", "generated")) -> float:
    """FAD-style score of two pooled embedding sets (e.g. all VGGish frames of all clips).

    Args:
        reference: (N1, D) embeddings of the reference audio, N1 >= 2.
        generated: (N2, D) embeddings of the generated audio, N2 >= 2.
        names: what each set is (e.g. its folder), for error messages.
    """
    return frechet_distance(*gaussian_fit(reference, names[0]), *gaussian_fit(generated, names[1]))


def main(argv: list[str] | None = None) -> None:
    """`python eval/frechet.py REFERENCE_DIR GENERATED_DIR --embedder vggish:CKPT` (FAD with VGGish)."""
    parser = argparse.ArgumentParser(description="Frechet distance between two folders' audio embeddings (FAD).")
    parser.add_argument("reference", help="folder of reference clips")
    parser.add_argument("generated", help="folder of generated clips")
    parser.add_argument("--embedder", required=True,
                        help="vggish:CKPT (FAD), panns:CKPT, clap:DIR or detector:FILE (offline stand-ins)")
    parser.add_argument("--strict", action="store_true",
                        help="a WAV file shorter than its header declares is an error, not a warning")
    args = parser.parse_args(argv)
    if args.strict:
        strict_audio()
    try:
        embedder = load_scorer(args.embedder, "frame_embeddings")
        reference, generated = (pooled_embeddings(embedder, audio_files(d)) for d in (args.reference, args.generated))
        distance = embedding_frechet_distance(reference, generated, (args.reference, args.generated))
    except DataError as error:
        parser.error(str(error))
    print(json.dumps({"fad": distance, "embedder": args.embedder, "reference_frames": len(reference),
                      "generated_frames": len(generated)}, indent=2))


if __name__ == "__main__":
    main()
