r"""Functionals beyond the discrepancy: the implosion/explosion functional of Appendix F.

Altekrüger, Hertrich, Steidl (ICML 2023), App. F, Example 3. For :math:`\mu` on
:math:`\mathbb R^2` with points :math:`p = (x, y)`,

.. math::
    \mathcal F(\mu) = \int \mathbf 1_{(-\infty,0)}(x)\,|y| - x \,d\mu(x,y)
    \;-\; \frac12 \iint \mathbf 1_{[0,\infty)}(x_1)\mathbf 1_{[0,\infty)}(x_2)\,|y_1-y_2|\,
    d\mu(x_1,y_1)\,d\mu(x_2,y_2).

The potential part pulls everything to the right (:math:`-x`) and, in the left
half-plane, down onto the axis :math:`y = 0` (implosion); the interaction part is a
one-dimensional Riesz (:math:`r = 1`) interaction energy in :math:`y` that acts
only between points of the right half-plane, where the mass spreads out in
:math:`y` (explosion). The functional is not of the form :math:`\mathcal D_K^2`,
which is the point of the example: the neural schemes only need a two-batch
estimate of :math:`\mathcal F` (backward scheme) or of its directional derivative
(forward scheme).

The class :class:`ImplosionExplosion` has the interface of
:class:`mmdflow.energies.DiscrepancyEnergy`: :meth:`~ImplosionExplosion.value`,
:meth:`~ImplosionExplosion.gradient` (Wasserstein gradient at the particles),
:meth:`~ImplosionExplosion.first_variation`, :meth:`~ImplosionExplosion.batch_estimate`
and :meth:`~ImplosionExplosion.batch_directional_derivative`.
"""

from __future__ import annotations

import torch

from ._checks import check_points, check_weights
from .summation.sliced import abs_sums_1d
from .summation.sort1d import sign_sums

__all__ = ["ImplosionExplosion"]


def _check_2d(x: torch.Tensor, name: str) -> torch.Tensor:
    check_points(x, name)
    if x.shape[1] != 2:
        raise ValueError(f"{name} must be points in the plane, shape (N, 2), got shape {tuple(x.shape)}")
    return x


class ImplosionExplosion:
    r"""The implosion/explosion functional of App. F, Ex. 3 (see the module docstring for the formula).

    Points are ``[N, 2]`` tensors ``(x, y)``; weights ``[N]`` (``None`` = uniform).
    The indicator :math:`\mathbf 1_{[0,\infty)}(x)` makes :math:`\mathcal F` discontinuous
    across the axis :math:`x = 0`; gradients are taken where it is smooth (its jump is
    ignored), as in the paper's code.
    """

    def __repr__(self):
        return "ImplosionExplosion()"

    def fingerprint(self) -> dict:
        """The functional has no parameters: its type determines it (for checkpoint keys).

        Returns:
            ``{"type": "ImplosionExplosion"}``.
        """
        return {"type": type(self).__name__}

    # --------------------------------------------------------------------------------- exact (particle) quantities
    @staticmethod
    def potential(p: torch.Tensor) -> torch.Tensor:
        r"""The potential :math:`V(x, y) = \mathbf 1_{x<0}|y| - x`, shape ``[N]``.

        Args:
            p: points ``[N, 2]`` with coordinates ``(x, y)``.

        Returns:
            ``[N]`` tensor.
        """
        x, y = p[:, 0], p[:, 1]
        return torch.where(x < 0, y.abs(), torch.zeros_like(y)) - x

    def value(self, p: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
        r""":math:`\mathcal F(\mu)` for :math:`\mu = \sum_i w_i\delta_{p_i}`, a 0-d tensor (sorting, O(N log N)).

        Args:
            p: particles ``[N, 2]``.
            w: weights ``[N]``; ``None``: uniform.

        Returns:
            0-d tensor.

        Raises:
            ValueError: ``p`` is not a finite ``[N, 2]`` tensor, or ``w`` does not match it.
        """
        _check_2d(p, "p")
        w = check_weights(w, p, "w")
        right = p[:, 0] >= 0
        wr = torch.where(right, w, torch.zeros_like(w))
        y = p[:, 1]
        return (w * self.potential(p)).sum() - 0.5 * (wr * abs_sums_1d(y, y, wr)).sum()

    def first_variation(self, z: torch.Tensor, p: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
        r""":math:`\frac{\delta\mathcal F}{\delta\mu}(z) = V(z) - \mathbf 1_{z_x\ge0}\sum_j w_j\mathbf 1_{x_j\ge0}|z_y - y_j|`, ``[len(z)]``.

        Args:
            z: evaluation points ``[L, 2]``.
            p: particles ``[N, 2]`` of :math:`\mu`.
            w: weights ``[N]``; ``None``: uniform.

        Returns:
            ``[L]`` tensor.

        Raises:
            ValueError: the points are not ``[*, 2]`` tensors, or ``w`` does not match ``p``.
        """
        _check_2d(z, "z")
        _check_2d(p, "p")
        w = check_weights(w, p, "w")
        wr = torch.where(p[:, 0] >= 0, w, torch.zeros_like(w))
        abs_sum = abs_sums_1d(z[:, 1], p[:, 1], wr)
        return self.potential(z) - torch.where(z[:, 0] >= 0, abs_sum, torch.zeros_like(abs_sum))

    def gradient(self, p: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
        r"""Wasserstein gradient :math:`\nabla\frac{\delta\mathcal F}{\delta\mu}(p_i)`, shape ``[N, 2]``.

        :math:`\big(-1,\ \mathbf 1_{x_i<0}\,\mathrm{sign}(y_i) - \mathbf 1_{x_i\ge0}\sum_j w_j
        \mathbf 1_{x_j\ge0}\,\mathrm{sign}(y_i-y_j)\big)`; the particle velocity is its negative.

        Args:
            p: particles ``[N, 2]``.
            w: weights ``[N]``; ``None``: uniform.

        Returns:
            ``[N, 2]`` tensor.

        Raises:
            ValueError: ``p`` is not an ``[N, 2]`` tensor, or ``w`` does not match it.
        """
        _check_2d(p, "p")
        w = check_weights(w, p, "w")
        right = p[:, 0] >= 0
        wr = torch.where(right, w, torch.zeros_like(w))
        sign_sum = sign_sums(p[:, 1][None], wr, want_h=False)[0][0]        # sum_j wr_j sign(y_i - y_j), by one sort
        gy = torch.where(right, -sign_sum, torch.sign(p[:, 1]))
        return torch.stack([-torch.ones_like(gy), gy], dim=1)

    # ----------------------------------------------------------------------------- estimates for the neural schemes
    def batch_estimate(self, p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
        r"""Two-independent-batch estimate of :math:`\mathcal F`, differentiable in ``p1``, ``p2`` (``[B1, 2]``, ``[B2, 2]``).

        The potential is averaged over both batches; the interaction uses cross pairs
        only: :math:`-\frac12\frac1{B_1B_2}\sum_{ij}\mathbf 1_{x^1_i\ge0}\mathbf 1_{x^2_j\ge0}|y^1_i-y^2_j|`
        (as the neural backward scheme, App. F and Sec. 3).

        Args:
            p1: first batch ``[B1, 2]``.
            p2: second, independent batch ``[B2, 2]``.

        Returns:
            0-d tensor.

        Raises:
            ValueError: a batch is not an ``[B, 2]`` tensor.
        """
        _check_2d(p1, "p1")
        _check_2d(p2, "p2")
        pot = self.potential(torch.cat([p1, p2])).mean()
        m1 = (p1[:, 0] >= 0).to(p1.dtype)
        m2 = (p2[:, 0] >= 0).to(p2.dtype)
        inter = (m1[:, None] * m2[None, :] * (p1[:, 1, None] - p2[None, :, 1]).abs()).mean()
        return pot - 0.5 * inter

    def batch_directional_derivative(self, p1: torch.Tensor, u1: torch.Tensor, p2: torch.Tensor,
                               u2: torch.Tensor) -> torch.Tensor:
        r"""Two-batch estimate of :math:`D_v\mathcal F(\mu)` for the velocity plan sampled as ``(p1, u1)``, ``(p2, u2)``.

        Sec. 3 of the paper: :math:`D_v\mathcal F = \int\langle\nabla V(p),u\rangle dv
        - \frac12\iint\mathbf 1\mathbf 1\,\partial|y_1-y_2|[u_{1,y}-u_{2,y}]\,dv\,dv` with
        :math:`\partial|z|[h] = \mathrm{sign}(z)h` for :math:`z\ne0` and :math:`|h|` at
        :math:`z = 0` (one-sided derivative: coinciding points separate). Differentiable
        in ``u1``, ``u2``. Shapes ``[B1, 2]``, ``[B1, 2]``, ``[B2, 2]``, ``[B2, 2]``.

        Args:
            p1: first batch ``[B1, 2]``.
            u1: its velocities ``[B1, 2]``.
            p2: second batch ``[B2, 2]``.
            u2: its velocities ``[B2, 2]``.

        Returns:
            0-d tensor, differentiable in ``u1`` and ``u2``.

        Raises:
            ValueError: a batch or velocity is not a ``[B, 2]`` tensor.
        """
        for t, name in ((p1, "p1"), (u1, "u1"), (p2, "p2"), (u2, "u2")):
            _check_2d(t, name)
        if u1.shape != p1.shape or u2.shape != p2.shape:
            raise ValueError(f"velocities must match the points: p1 {tuple(p1.shape)}, u1 {tuple(u1.shape)}, "
                             f"p2 {tuple(p2.shape)}, u2 {tuple(u2.shape)}")
        p, u = torch.cat([p1, p2]), torch.cat([u1, u2])
        left = p[:, 0] < 0
        dpot = (torch.where(left, torch.sign(p[:, 1]) * u[:, 1], torch.zeros_like(u[:, 1])) - u[:, 0]).mean()
        m1 = (p1[:, 0] >= 0).to(p1.dtype)
        m2 = (p2[:, 0] >= 0).to(p2.dtype)
        dy = p1[:, 1, None] - p2[None, :, 1]
        du = u1[:, 1, None] - u2[None, :, 1]
        dabs = torch.where(dy != 0, torch.sign(dy) * du, du.abs())
        return dpot - 0.5 * (m1[:, None] * m2[None, :] * dabs).mean()
