r"""The exact Wasserstein gradient flow of :math:`\mathcal D_K^2(\cdot,\nu)` on the line (Riesz kernel, r = 1).

On :math:`\mathbb R` a probability measure :math:`\mu` is described by its quantile function
:math:`Q_\mu(s) = \inf\{x : F_\mu(x)\ge s\}`, :math:`s\in(0,1)`, and
:math:`W_2(\mu,\mu')^2 = \int_0^1 |Q_\mu(s)-Q_{\mu'}(s)|^2\,ds`: the Wasserstein space is isometric to the closed
convex cone of non-decreasing functions in :math:`L^2(0,1)`. With :math:`K(x,y) = -|x-y|` the book's
:math:`\mathcal D_K^2 = \mathcal E_K(\mu)+\mathcal V_{K,\nu}(\mu)+\mathcal E_K(\nu)` becomes (for non-decreasing
:math:`Q`, using :math:`\iint|Q(s)-Q(s')|\,ds\,ds' = 2\int_0^1(2s-1)Q(s)\,ds`)

.. math::
    \mathcal D_K^2(\mu,\nu) = \int_0^1 g_s(Q(s))\,ds + \mathcal E_K(\nu),\qquad
    g_s(q) = (1-2s)\,q + \int|q-y|\,d\nu(y),

a *separable* convex functional of :math:`Q` (Hertrich, Beinert, Gräf, Steidl 2023). Its :math:`L^2`
gradient flow is the Wasserstein gradient flow, level by level:

.. math::
    \partial_t Q(t,s) \in -\partial g_s(Q) = 2\big(s - [F_\nu(Q^-), F_\nu(Q)]\big),

i.e. :math:`\partial_t Q = 2(s - F_\nu(Q))` where :math:`F_\nu` is continuous. The constant 2 is that of the
book's normalisation (:math:`\mathcal D_K^2 = \tfrac12\mathrm{MMD}^2`). For :math:`s_1 < s_2` the right-hand
sides are ordered, so the pointwise solution stays non-decreasing in :math:`s` and the cone constraint never
acts: each level is an independent scalar ODE (a differential inclusion at atoms of :math:`\nu`).

* A level moves monotonically toward its equilibrium set
  :math:`\{q: F_\nu(q^-)\le s\le F_\nu(q)\}` = :math:`[Q_\nu(s), Q_\nu^+(s)]` and never crosses it.
* At an atom :math:`a` of :math:`\nu` every level with :math:`F_\nu(a^-) < s < F_\nu(a)` arrives at :math:`a`
  with speed at least :math:`2\min(s-F_\nu(a^-), F_\nu(a)-s) > 0`, i.e. in finite time, and stays: levels merge
  and :math:`\mu_t` gets an atom. :func:`quantile_flow` integrates the one-sided velocity (extended as a
  constant beyond the equilibrium) and clips at the equilibrium, which is exact because the trajectory never
  sees the other side.
* A Dirac start :math:`\delta_{x_0}` is :math:`Q(0,\cdot)\equiv x_0`; the levels separate at once.

The ODEs are solved by :func:`solve_levels`, an embedded Dormand-Prince 5(4) method in float64 with one
adaptive step size *per level* (vectorised), so a kink of one level's right-hand side (a density jump of
:math:`\nu` crossed) shortens only that level's steps.

Closed form (uniform :math:`\nu` on :math:`[a,b]`, :math:`x_0\in[a,b]`):
:math:`Q(t,s) = Q_\nu(s) + (x_0-Q_\nu(s))\,e^{-2t/(b-a)}` (:func:`uniform_flow_from_dirac`, which also covers
:math:`x_0` outside :math:`[a,b]`: first a linear phase :math:`x_0+2st` until the level enters the support).

Targets (:class:`Uniform`, :class:`Gaussian`, :class:`Atom` and :class:`Mixture` of them) give the CDF from the
left and the right, the quantile functions and the density of the continuous part. Everything is float64 torch.

The package holds three modules: :mod:`~mmdflow.analytic1d.targets` (the targets),
:mod:`~mmdflow.analytic1d.flow` (the flow and its ODE solver) and :mod:`~mmdflow.analytic1d.wasserstein` (:math:`W_2`
on the line); every name is exported here.
"""

from __future__ import annotations

from .flow import DRIFT, quantile_flow, solve_levels, uniform_flow_from_dirac
from .targets import Atom, Gaussian, Mixture, Uniform, as_mixture
from .wasserstein import cell_nodes, gauss_legendre, w2_discrete, w2_discrete_to_quantile, w2_quantiles

__all__ = ["Uniform", "Gaussian", "Atom", "Mixture", "as_mixture", "quantile_flow", "solve_levels",
           "uniform_flow_from_dirac", "w2_quantiles", "w2_discrete", "w2_discrete_to_quantile", "gauss_legendre",
           "cell_nodes", "DRIFT"]
