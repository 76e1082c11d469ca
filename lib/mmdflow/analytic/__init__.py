r"""Closed forms for the interaction energy flow started at a Dirac measure.

For the Riesz kernel :math:`K(x, y) = -\|x-y\|^r`, :math:`r\in(0,2)`, the
interaction energy :math:`\mathcal E_K(\mu) = -\frac12\iint\|x-y\|^r\,d\mu\,d\mu`
started at :math:`\delta_0` is the one Wasserstein gradient flow of the book
with a known answer (Altekrüger, Hertrich, Steidl 2023, Sec. 4 and 6.1). Every
quantity is a dilation of one measure,

.. math::
    \eta^* = \mathrm{prox}_{\mathcal E_K}(\delta_0)
    = \operatorname*{argmin}_\eta\ \tfrac12\int\|x\|^2\,d\eta
      - \tfrac12\iint\|x-y\|^r\,d\eta\,d\eta ,

characterised by the Frostman condition
:math:`\frac12\|x\|^2 - \int\|x-y\|^r\,d\eta^*(y) \ge C` with equality on the
support. With :math:`R_*` its support radius:

* **ball case** :math:`d + r < 4`: :math:`\eta^*` has the density
  :math:`A_{d,r}(R_*^2-\|x\|^2)^{1-\frac{d+r}{2}}` on the ball of radius
  :math:`R_*`, with :math:`R_*^{2-r} = r\,\Gamma(2-\frac r2)\Gamma(\frac{d+r}2)/\Gamma(\frac d2+1)`;
  :math:`\|X\|^2/R_*^2 \sim \mathrm{Beta}(\frac d2, 2-\frac{d+r}2)`.
* **sphere case** :math:`d + r \ge 4`: :math:`\eta^*` is uniform on the sphere
  of radius :math:`R_*` with :math:`R_*^{2-r} = \frac r2 M_r(d)`, where
  :math:`M_r(d) = \int_{S^{d-1}}\|e-\omega\|^r\,d\sigma(\omega)`.

Because :math:`\mathcal E_K((c\,\mathrm{Id})_\#\eta) = c^r\mathcal E_K(\eta)`,
the JKO iterates are :math:`\mu_n = (c_n\mathrm{Id})_\#\eta^*` with
:math:`c_n - c_{n-1} = \tau c_n^{r-1}`, :math:`c_0 = 0`, and the limit curve
(the Wasserstein gradient flow) is
:math:`\gamma(t) = (((2-r)t)^{1/(2-r)}\mathrm{Id})_\#\eta^*`.

These formulas are verified in ``tests/test_analytic.py`` (Frostman condition by
Monte Carlo, normalisation by quadrature, moments of the samplers).

The package holds three modules: :mod:`~mmdflow.analytic.prox` (:math:`\eta^*`, its radial law and the dilation
:math:`s(t)`), :mod:`~mmdflow.analytic.curves` (the limit curve and the scale factors of the JKO, forward and Euler
schemes) and :mod:`~mmdflow.analytic.samplers` (samplers and the Frostman check); every name is exported here.
"""

from __future__ import annotations

from .curves import euler_scale, flow_density, forward_scale, jko_scale, support_radius
from .prox import (check_dimension, check_time, flow_radial_cdf, flow_scale, is_sphere_case, mean_radius,
                   prox_density, prox_radial_cdf, prox_radial_density, prox_radius, radial_cdf, radial_moment,
                   regularized_beta, second_moment, sphere_mean_distance)
from .samplers import frostman_potential, sample_beta, sample_flow, sample_gamma, sample_jko, sample_prox

__all__ = [
    "check_dimension",
    "check_time",
    "is_sphere_case",
    "prox_radius",
    "prox_density",
    "prox_radial_density",
    "regularized_beta",
    "radial_cdf",
    "flow_scale",
    "support_radius",
    "flow_density",
    "prox_radial_cdf",
    "flow_radial_cdf",
    "jko_scale",
    "forward_scale",
    "euler_scale",
    "sphere_mean_distance",
    "radial_moment",
    "mean_radius",
    "second_moment",
    "sample_prox",
    "sample_flow",
    "sample_jko",
    "sample_gamma",
    "sample_beta",
    "frostman_potential",
]
