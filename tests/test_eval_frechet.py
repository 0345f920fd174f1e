"""Fréchet distance: closed forms and an independent eigen-decomposition implementation."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import linalg

from tclap_eval.frechet import embedding_frechet_distance, frechet_distance, gaussian_fit
from tclap.errors import DataError


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def _frechet_by_eigh(mu1, sigma1, mu2, sigma2) -> float:
    """Tr sqrt(S1 S2) = Tr sqrt(S1^½ S2 S1^½), a symmetric PSD matrix: sum of sqrt eigenvalues."""
    root1 = _psd_sqrt(sigma1)
    middle = np.linalg.eigvalsh(root1 @ sigma2 @ root1)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2)
                 - 2 * np.sum(np.sqrt(np.clip(middle, 0, None))))


def test_diagonal_closed_form():
    mu1, mu2 = np.array([0.0, 1.0]), np.array([3.0, -1.0])
    s1, s2 = np.array([4.0, 1.0]), np.array([1.0, 9.0])
    expected = (9 + 4) + (2 - 1) ** 2 + (1 - 3) ** 2  # ||mu1-mu2||² + sum (sqrt s1 - sqrt s2)²
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, abs=1e-9)


def test_identical_gaussians_are_zero_apart():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((50, 4))
    mu, sigma = gaussian_fit(a)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-6)


def test_a_set_against_itself_is_clamped_at_zero_not_below():
    """A set against itself: the unclamped formula gives +-1e-14 by rounding, its sign set by the CPU's
    kernels (seed 0 gave -7e-15 on one machine, +7e-15 on another); a distance is never negative."""
    negative = 0
    for seed in range(30):
        mu, sigma = gaussian_fit(np.random.default_rng(seed).standard_normal((20, 8)))
        raw = 2 * np.trace(sigma) - 2 * np.trace(linalg.sqrtm(sigma @ sigma).real)
        negative += raw < 0
        assert frechet_distance(mu, sigma, mu, sigma) == (0.0 if raw < 0 else pytest.approx(raw, abs=1e-12))
    assert negative  # 17 of the 30 on the machine of 2026-12-07: the clamp was exercised


def test_regularisation_is_reported_in_our_words_and_scipy_warning_kept_out():
    a = np.random.default_rng(0).standard_normal((2, 4))  # rank-1 covariance: scipy warns "Matrix is singular"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert embedding_frechet_distance(a, a) >= 0.0
    messages = [str(w.message) for w in caught]
    assert not any(issubclass(w.category, linalg.LinAlgWarning) for w in caught)
    assert any("regularised with 1e-06 added to both diagonals" in m for m in messages), messages


def test_matches_eigen_implementation_on_random_data():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((200, 6)) @ rng.standard_normal((6, 6))
    b = rng.standard_normal((150, 6)) @ rng.standard_normal((6, 6)) + 0.5
    mu1, sigma1 = a.mean(0), np.cov(a.T)
    mu2, sigma2 = b.mean(0), np.cov(b.T)
    expected = _frechet_by_eigh(mu1, sigma1, mu2, sigma2)
    assert embedding_frechet_distance(a, b) == pytest.approx(expected, rel=1e-7)


def test_singular_covariances_fall_back_and_stay_close():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((3, 8)), rng.standard_normal((4, 8))  # fewer samples than dims
    expected = _frechet_by_eigh(a.mean(0), np.cov(a.T), b.mean(0), np.cov(b.T))
    assert embedding_frechet_distance(a, b) == pytest.approx(expected, rel=1e-3)


def test_gaussian_fit_uses_unbiased_covariance():
    x = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    mu, sigma = gaussian_fit(x)
    np.testing.assert_allclose(mu, [1.0, 1.0])
    np.testing.assert_allclose(sigma, np.diag([4 / 3, 4 / 3]))


def test_bad_input_is_a_data_error():
    with pytest.raises(DataError, match=r"gen/: need at least 2 embeddings"):
        embedding_frechet_distance(np.ones((5, 3)), np.ones((1, 3)), names=("ref/", "gen/"))
    with pytest.raises(DataError, match="shapes differ"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
