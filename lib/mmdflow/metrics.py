r"""Accuracy of a sample set against a law that can be sampled exactly.

The book measures every scheme started at a Dirac against the analytic curve
:math:`\gamma(t)` of :mod:`mmdflow.analytic` with the discrepancy of the distance
kernel :math:`K(x,y) = -\|x-y\|` (Riesz, ``r = 1``), in the normalisation of
Altekrüger et al. (2023), Sec. 2 (half the textbook MMD²):

.. math::
    \mathcal D_K^2(\mu_n, \nu_n) = \frac1{n^2}\sum_{i,j}\|x_i-y_j\|
    - \frac1{2n^2}\sum_{i,j}\|x_i-x_j\| - \frac1{2n^2}\sum_{i,j}\|y_i-y_j\|,

between the scheme's ``n`` particles :math:`x_i` and a fresh exact sample
:math:`y_j` of the same size. Even a perfect scheme does not give zero: for two
independent ``n``-samples of a law :math:`\nu` the expectation is
:math:`\mathbb E\|X-X'\|/n` (the diagonal of the V-statistic vanishes). That value,
estimated from two independent exact samples, is reported as the **noise
floor**; a scheme is as accurate as the metric can tell when its
:math:`\mathcal D_K^2` is within a small multiple of it.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch

from ._checks import check_points, check_positive, check_riesz_exponent, check_weights
from .energies import energy_distance, interaction_energy, mmd2, potential_energy
from .kernels import Gaussian, Riesz
from .runtime import timed

__all__ = ["ExactComparison", "FlowErrors", "GradientError", "RadialStatistics", "compare_to_exact", "flow_error",
           "flow_errors", "expected_noise", "flow_noise_floor", "gradient_error", "radial_statistics",
           "WeightStatistics", "weight_statistics", "effective_sample_size", "zero_weight_fraction",
           "HeldOutScores", "heldout_scores"]

_DISTANCE = Riesz(1.0)


class ExactComparison(NamedTuple):
    r"""Result of :func:`compare_to_exact`.

    Attributes:
        d2: mean over repeats of :math:`\mathcal D_K^2(x, y)` (``r = 1``), ``y`` a fresh exact sample.
        noise: mean over repeats of :math:`\mathcal D_K^2(y, y')` between two independent exact samples.
        d2_std: standard deviation of ``d2`` over the repeats (``nan`` for one repeat).
        noise_std: standard deviation of ``noise`` over the repeats (``nan`` for one repeat).
    """

    d2: float
    noise: float
    d2_std: float
    noise_std: float

    @property
    def ratio(self) -> float:
        """``d2 / noise``: about 1 for a sample of the exact law."""
        return self.d2 / self.noise


def _std(values: list[float]) -> float:
    return float(torch.tensor(values, dtype=torch.float64).std()) if len(values) > 1 else float("nan")


def compare_to_exact(x: torch.Tensor, sampler: Callable[[int, torch.Generator | None], torch.Tensor], *,
                     n_repeats: int = 3, generator: torch.Generator | None = None) -> ExactComparison:
    r"""Discrepancy of the particles ``x`` to an exactly sampled law, with its noise floor.

    For each of ``n_repeats`` repeats draws two independent exact samples ``y``, ``y'`` of size
    ``N = len(x)`` with ``sampler(N, generator)`` and records
    :math:`\mathcal D_K^2(x, y)` and :math:`\mathcal D_K^2(y, y')` (Riesz ``r = 1``, float64).

    Args:
        x: particles ``[N, d]`` (any floating dtype/device; compared in float64).
        sampler: ``sampler(n, generator) -> [n, d]`` exact sample of the reference law.
        n_repeats: number of repeats (``>= 1``).
        generator: ``torch.Generator`` passed to ``sampler``.

    Returns:
        :class:`ExactComparison` of Python floats.
    """
    check_points(x, "x")
    if isinstance(n_repeats, bool) or not isinstance(n_repeats, int) or n_repeats < 1:
        raise ValueError(f"n_repeats must be an integer >= 1, got n_repeats={n_repeats!r}")
    x = x.detach().to(torch.float64)
    n, d = x.shape
    d2, noise = [], []
    e_x = float(interaction_energy(x, _DISTANCE))          # E_K(x), shared by the repeats
    for _ in range(n_repeats):
        y1 = sampler(n, generator).to(device=x.device, dtype=torch.float64)
        y2 = sampler(n, generator).to(device=x.device, dtype=torch.float64)
        if y1.shape != (n, d) or y2.shape != (n, d):
            raise ValueError(f"sampler must return shape ({n}, {d}) to match x, got {tuple(y1.shape)}")
        e1, e2 = float(interaction_energy(y1, _DISTANCE)), float(interaction_energy(y2, _DISTANCE))
        # D_K^2(a, b) = E_K(a) + V_{K,b}(a) + E_K(b)  (Sec. 2)
        d2.append(e_x + float(potential_energy(x, y1, _DISTANCE)) + e1)
        noise.append(e1 + float(potential_energy(y1, y2, _DISTANCE)) + e2)
    return ExactComparison(sum(d2) / n_repeats, sum(noise) / n_repeats, _std(d2), _std(noise))


def flow_error(x: torch.Tensor, t: float, r: float, *, n_repeats: int = 3,
               generator: torch.Generator | None = None) -> ExactComparison:
    r""":func:`compare_to_exact` against the limit curve :math:`\gamma(t)` of the interaction energy
    with Riesz exponent ``r`` in dimension ``x.shape[1]`` (:func:`mmdflow.analytic.sample_flow`).

    Args:
        x: particles ``[N, d]``.
        t: the time :math:`t > 0`.
        r: the Riesz exponent in :math:`(0, 2)`.
        n_repeats: the number of exact reference samples.
        generator: the source of randomness.

    Returns:
        An :class:`ExactComparison`.

    Raises:
        ValueError: ``x`` is not a finite ``[N, d]`` tensor, ``r`` or ``t`` is out of range.
    """
    from . import analytic

    check_points(x, "x")
    r = check_riesz_exponent(r)
    t = analytic.check_time(t)
    d = x.shape[1]
    return compare_to_exact(x, lambda n, g: analytic.sample_flow(n, t, d, r, generator=g),
                            n_repeats=n_repeats, generator=generator)


def expected_noise(sampler: Callable[[int, torch.Generator | None], torch.Tensor], n: int, *,
                   n_pairs: int = 100_000, generator: torch.Generator | None = None) -> float:
    r"""Expected noise floor :math:`\mathbb E\,\mathcal D_K^2(\nu_n, \nu_n') = \mathbb E\|X-X'\|/n`
    of two independent ``n``-samples (``r = 1``, V-statistic), with :math:`\mathbb E\|X-X'\|`
    estimated from ``n_pairs`` independent exact pairs (relative error about ``1/sqrt(n_pairs)``).

    Derivation: the cross term has mean :math:`m = \mathbb E\|X-X'\|`, each self term
    :math:`-\frac12(1-\frac1n)m` (the ``n`` diagonal entries vanish), so the sum is :math:`m/n`.

    Args:
        sampler: ``(m, generator) -> [m, d]`` exact samples of :math:`\nu`.
        n: the sample size ``n >= 1``.
        n_pairs: the number of pairs estimating :math:`\mathbb E\|X-X'\|`.
        generator: the source of randomness.

    Returns:
        The expected :math:`\mathcal D_K^2` as a float.

    Raises:
        ValueError: ``n`` is not an integer ``>= 1``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got n={n!r}")
    a = sampler(n_pairs, generator).to(torch.float64)
    b = sampler(n_pairs, generator).to(torch.float64)
    return float((a - b).norm(dim=1).mean()) / n


class FlowErrors(NamedTuple):
    r"""Accuracy of a trajectory started at :math:`\delta_0` against :math:`\gamma(t)`, one entry per snapshot.

    Attributes (all ``[S]`` float64 tensors): ``times``; ``d2``, ``noise``, ``d2_std``, ``noise_std`` as in
    :class:`ExactComparison`; ``radius_ratio``: mean particle radius :math:`\frac1N\sum_i\|x_i\|` over the
    analytic mean radius of :math:`\gamma(t)` (:func:`mmdflow.analytic.mean_radius`).
    """

    times: torch.Tensor
    d2: torch.Tensor
    noise: torch.Tensor
    d2_std: torch.Tensor
    noise_std: torch.Tensor
    radius_ratio: torch.Tensor


def flow_errors(traj, r: float, *, times=None, n_repeats: int = 3, generator: torch.Generator | None = None,
                min_time: float = 0.0, tol: float = 1e-6) -> FlowErrors:
    r""":func:`flow_error` along a trajectory (``traj.positions`` ``[S, N, d]``).

    Evaluated at every snapshot with time ``> min_time``, or, with ``times`` given, at the snapshots at those
    times (``t = 0`` is always skipped: :math:`\gamma(0) = \delta_0`). A time with no snapshot within
    ``tol * max(1, |t|)`` raises ``ValueError`` (see :meth:`mmdflow.trajectory.Trajectory.at`). The times
    reported are the snapshots' own. Weighted snapshots are not supported.

    Args:
        traj: a :class:`mmdflow.trajectory.Trajectory` with uniform weights.
        r: the Riesz exponent in :math:`(0, 2)`.
        times: the times to evaluate, or ``None`` (every snapshot after ``min_time``).
        n_repeats: the number of exact reference samples per time.
        generator: the source of randomness.
        min_time: skip snapshots at times ``<= min_time``.
        tol: the relative time tolerance of :meth:`~mmdflow.trajectory.Trajectory.index_of`.

    Returns:
        A :class:`FlowErrors`, one entry per evaluated snapshot.

    Raises:
        ValueError: the trajectory has weights, a time has no snapshot, or no snapshot is left after ``min_time``.
    """
    from . import analytic

    if getattr(traj, "weights", None) is not None:
        raise ValueError("flow_errors compares uniformly weighted particles; got a trajectory with weights")
    if times is None:
        index = list(range(len(traj.times)))
    else:
        index = [traj.index_of(t, tol=tol) for t in times]
    rows = []
    for i in index:
        t, x = float(traj.times[i]), traj.positions[i]
        if t <= min_time:
            continue
        res = flow_error(x, t, r, n_repeats=n_repeats, generator=generator)
        ratio = float(x.detach().to(torch.float64).norm(dim=1).mean()) / analytic.mean_radius(t, x.shape[1], r)
        rows.append((t, *res, ratio))
    if not rows:
        raise ValueError(f"the trajectory has no snapshot after t={min_time}")
    cols = torch.tensor(rows, dtype=torch.float64).T
    return FlowErrors(*cols)


def flow_noise_floor(n: int, t: float, d: int, r: float, *, n_pairs: int = 100_000,
                     generator: torch.Generator | None = None) -> float:
    r""":func:`expected_noise` for :math:`\gamma(t)` of the interaction flow (:func:`mmdflow.analytic.sample_flow`).

    Args:
        n: the number of particles.
        t: the time :math:`t > 0`.
        d: the dimension.
        r: the Riesz exponent in :math:`(0, 2)`.
        n_pairs: the number of pairs estimating :math:`\mathbb E\|X-X'\|`.
        generator: the source of randomness.

    Returns:
        The expected :math:`\mathcal D_K^2` of two exact ``n``-samples as a float.
    """
    from . import analytic

    return expected_noise(lambda m, g: analytic.sample_flow(m, t, d, r, generator=g), n, n_pairs=n_pairs,
                          generator=generator)


class RadialStatistics(NamedTuple):
    r"""How the particle radii compare with the radial law of :math:`\gamma(t)`: see :func:`radial_statistics`."""

    shell_fraction: float         #: fraction of particles with :math:`|\|x_i\| - R(t)| \le` band :math:`R(t)`
    exact_shell_fraction: float   #: the same fraction for :math:`\gamma(t)` itself (1 in the sphere case)
    cdf_distance: float           #: Kolmogorov distance of the radii to the exact radial CDF
    radius: float                 #: the support radius :math:`R(t)`


def radial_statistics(x: torch.Tensor, t: float, r: float, *, band: float = 0.05) -> RadialStatistics:
    r"""Radial statistics of particles ``x`` ``[N, d]`` against :math:`\gamma(t)` (Riesz exponent ``r``, ``d = x.shape[1]``).

    :math:`\mathcal D_K^2` at a few hundred particles hardly sees how mass is spread along the radius; in the
    sphere case (:math:`d + r \ge 4`, where :math:`\gamma(t)` is uniform on the sphere of radius :math:`R(t)`) a
    thick shell of radii between :math:`0.2R` and :math:`R` reads at its noise floor. These two numbers do:

    * ``shell_fraction``: the fraction of particles within ``band`` :math:`R(t)` of the support radius
      :math:`R(t)` (:func:`mmdflow.analytic.support_radius`), next to ``exact_shell_fraction``, the mass of
      :math:`\gamma(t)` there (1 in the sphere case);
    * ``cdf_distance``: :math:`\sup_\rho|F_N(\rho) - F(\rho)|` between the empirical CDF of the radii
      :math:`\|x_i\|` and the exact radial CDF :math:`F` (:func:`mmdflow.analytic.flow_radial_cdf`); an exact
      ``N``-sample reads about :math:`0.87/\sqrt N` in the ball case (the mean of Kolmogorov's law) and 0 in the
      sphere case, where :math:`F` is a step at :math:`R(t)` (radii within :math:`10^{-9}R(t)` of it count as on it).

    Args:
        x: particles ``[N, d]``.
        t: the time :math:`t > 0`.
        r: the Riesz exponent in :math:`(0, 2)`.
        band: the shell's half-width as a fraction of :math:`R(t)`, in :math:`(0, 1)`.

    Returns:
        A :class:`RadialStatistics`.

    Raises:
        ValueError: ``t`` is not a scalar ``> 0``, ``band`` is outside :math:`(0, 1)`, or ``x``/``r`` is invalid.
    """
    from . import analytic

    check_points(x, "x")
    r = check_riesz_exponent(r)
    t = analytic.check_time(t)
    if not isinstance(t, float) or t == 0:
        raise ValueError(f"t must be a scalar time > 0 (gamma(0) is the Dirac delta_0), got t={t!r}")
    if isinstance(band, bool) or not isinstance(band, (int, float)) or not 0 < band < 1:
        raise ValueError(f"band must be a fraction of the radius in (0, 1), got band={band!r}")
    d = x.shape[1]
    big_r = float(analytic.support_radius(t, d, r))
    rho = x.detach().to(torch.float64).norm(dim=1).cpu()
    sphere = analytic.is_sphere_case(d, r)
    if sphere:
        rho = torch.where((rho - big_r).abs() <= 1e-9 * big_r, torch.full_like(rho, big_r), rho)
    rho, _ = torch.sort(rho)
    n = rho.shape[0]
    shell = float(((rho - big_r).abs() <= band * big_r).double().mean())
    at = torch.searchsorted(rho, rho, right=True).double() / n       # F_N at each radius (ties counted)
    below = torch.searchsorted(rho, rho, right=False).double() / n   # F_N just below it
    cdf = torch.as_tensor(analytic.flow_radial_cdf(rho.numpy(), t, d, r), dtype=torch.float64)
    if sphere:   # F is the step 1{rho >= R}: compare both one-sided limits at every radius and at R
        cdf_below = (rho > big_r).double()
        inside, outside = float((rho < big_r).double().mean()), float((rho > big_r).double().mean())
        dist = max(float(torch.maximum((at - cdf).abs(), (below - cdf_below).abs()).max()), inside, outside)
        exact = 1.0
    else:        # F is continuous
        dist = float(torch.maximum(at - cdf, cdf - below).max())
        exact = 1.0 - float(analytic.flow_radial_cdf((1.0 - band) * big_r, t, d, r))
    return RadialStatistics(shell, exact, float(dist), big_r)


class GradientError(NamedTuple):
    """Accuracy and cost of a stochastic gradient: see :func:`gradient_error`."""

    relative_error: float   #: root mean square of ||g - g_ref|| / ||g_ref|| over the draws
    seconds: float          #: mean wall time of one call of ``estimator.gradient``
    draws: int


def gradient_error(estimator, reference, x: torch.Tensor, w: torch.Tensor | None = None, *,
                   draws: int = 5) -> GradientError:
    r"""Relative error of ``estimator.gradient(x, w)`` against ``reference.gradient(x, w)``, and its time.

    :math:`\big(\frac1D\sum_{j=1}^D \|g^{(j)} - g\|_F^2 / \|g\|_F^2\big)^{1/2}` over ``D = draws``
    calls (a sliced energy draws fresh directions at each call), with :math:`g` the reference gradient
    ``[N, d]``. Any energy objects with a ``gradient(x, w)`` method qualify (e.g.
    :class:`mmdflow.energies.SlicedDiscrepancyEnergy` against :class:`mmdflow.energies.DiscrepancyEnergy`).

    Args:
        estimator: an energy with ``gradient(x, w)``.
        reference: an energy with ``gradient(x, w)``.
        x: particles ``[N, d]``.
        w: weights ``[N]``; ``None``: uniform.
        draws: ``D``, the number of estimator calls.

    Returns:
        A :class:`GradientError` (relative error and time per call).

    Raises:
        ValueError: ``x`` is not a finite ``[N, d]`` tensor or ``draws`` is not a positive integer.
    """
    check_points(x, "x")
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ValueError(f"draws must be a positive integer, got {draws!r}")
    ref = reference.gradient(x, w).double()
    norm = float(ref.norm())
    if norm == 0.0:
        raise ValueError("the reference gradient is zero: a relative error is undefined")
    errs, seconds = timed(lambda: [float((estimator.gradient(x, w).double() - ref).norm()) ** 2
                                   for _ in range(draws)], device=x.device)
    return GradientError((sum(errs) / draws) ** 0.5 / norm, seconds / draws, draws)


# ----------------------------------------------------------------------------------------------
# weighted particle measures: weight degeneracy and kernel-independent scores (chapter 6)
# ----------------------------------------------------------------------------------------------
class WeightStatistics(NamedTuple):
    r"""Result of :func:`weight_statistics`.

    Attributes:
        ess: effective sample size :math:`1/\sum_i w_i^2` (between 1 and N).
        zero_fraction: share of the particles with weight at most ``atol`` (between 0 and 1).
    """

    ess: float
    zero_fraction: float


def _simplex_weights(w: torch.Tensor) -> torch.Tensor:
    if not isinstance(w, torch.Tensor) or w.dim() != 1 or w.shape[0] == 0:
        raise ValueError(f"w must be a non-empty 1D tensor of weights [N], got "
                         f"{tuple(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__}")
    return check_weights(w, w[:, None], "w")


def effective_sample_size(w: torch.Tensor) -> float:
    r"""Kish's effective sample size :math:`\mathrm{ESS}(w) = 1/\sum_i w_i^2 = (\sum_i w_i)^2/\sum_i w_i^2`.

    It is ``N`` for uniform weights, ``k`` for ``k`` equal non-zero weights and 1 for a single atom; for a
    weighted particle measure :math:`\sum_i w_i\delta_{x_i}` it is the number of equally weighted
    particles with the same :math:`\sum_i w_i^2` (the self term of :math:`\mathrm{MMD}^2` for a kernel that
    is 1 on the diagonal and about 0 off it).

    Args:
        w: weights ``[N]`` on the probability simplex (non-negative, summing to one).

    Returns:
        a Python float in ``[1, N]`` (computed in float64).
    """
    w = _simplex_weights(w).detach().double()
    return float(w.sum() ** 2 / (w * w).sum())


def zero_weight_fraction(w: torch.Tensor, *, atol: float = 0.0) -> float:
    r"""The share :math:`\#\{i : w_i \le \mathrm{atol}\}/N` of particles that carry no mass.

    Args:
        w: weights ``[N]`` on the probability simplex.
        atol: threshold :math:`\ge 0` (0: exactly zero, as the
            Euclidean simplex projection leaves them).

    Returns:
        The fraction as a float in :math:`[0, 1]`.

    Raises:
        ValueError: ``w`` is not on the simplex, or ``atol`` is negative or not finite.
    """
    w = _simplex_weights(w)
    atol = float(atol)
    if not math.isfinite(atol) or atol < 0:
        raise ValueError(f"atol must be a finite non-negative number, got {atol!r}")
    return float((w.detach() <= atol).double().mean())


def weight_statistics(w: torch.Tensor, *, atol: float = 0.0) -> WeightStatistics:
    """:func:`effective_sample_size` and :func:`zero_weight_fraction` of the weights ``w`` ``[N]``.

    Args:
        w: weights ``[N]`` on the probability simplex.
        atol: the threshold of :func:`zero_weight_fraction`.

    Returns:
        A :class:`WeightStatistics`.
    """
    return WeightStatistics(effective_sample_size(w), zero_weight_fraction(w, atol=atol))


class HeldOutScores(NamedTuple):
    r"""Result of :func:`heldout_scores`: scores of a weighted particle measure against a held-out sample.

    Attributes:
        energy_distance: :math:`2E|X-Y| - E|X-X'| - E|Y-Y'|` (twice :math:`\mathcal D_K^2` of the distance kernel).
        mmd2: :math:`\mathrm{MMD}^2` with the Gaussian kernel of bandwidth ``sigma``.
        sigma: that bandwidth.
    """

    energy_distance: float
    mmd2: float
    sigma: float


def heldout_scores(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None = None, *, sigma: float) -> HeldOutScores:
    r"""Scores of :math:`\mu = \sum_i w_i\delta_{x_i}` against the sample ``y`` with kernels other than the
    training kernel: the energy distance (the distance kernel :math:`-|x-y|`, Székely and Rizzo) and the
    V-statistic :math:`\mathrm{MMD}^2` of the Gaussian kernel :math:`e^{-|x-y|^2/(2\sigma^2)}`.

    Both through exact memory-bounded (``"blocked"``) kernel sums (:func:`mmdflow.energies.energy_distance`,
    :func:`mmdflow.energies.mmd2`), in float64.

    Args:
        x: particles ``[N, d]``.
        y: held-out sample ``[M, d]`` (uniform weights).
        w: ``[N]`` (``None`` = uniform).
        sigma: bandwidth of the second Gaussian kernel (> 0).

    Returns:
        :class:`HeldOutScores` of Python floats.
    """
    check_points(x, "x")
    check_points(y, "y")
    sigma = check_positive(sigma, "sigma")
    w = check_weights(w, x, "w")
    xd, yd, wd = x.detach().double(), y.detach().double(), w.detach().double()
    ed = float(energy_distance(xd, yd, wd, backend="blocked"))
    m2 = float(mmd2(xd, yd, Gaussian(sigma), wd, backend="blocked"))
    return HeldOutScores(ed, m2, sigma)
