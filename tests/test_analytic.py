"""Closed forms of the interaction flow from a Dirac, checked against their defining properties.

Nothing here compares the module with its own earlier output: the prox measure is checked through
the Frostman (Euler-Lagrange) condition with Monte Carlo, the densities through quadrature, the
samplers through closed-form moments, the JKO iterates through their defining equation, their
optimality and their convergence to the ODE solution.
"""

import functools
import math

import numpy as np
import pytest
import torch

from mmdflow import analytic

BALL = [(1, 0.5), (1, 1.0), (1, 1.5), (2, 0.5), (2, 1.0), (2, 1.5), (3, 0.5)]
SPHERE = [(3, 1.0), (3, 1.5), (4, 0.5), (5, 1.0), (10, 1.0)]


# ----------------------------------------------------------------------------- helpers

@functools.lru_cache(maxsize=None)
def _nodes(n):
    return np.polynomial.legendre.leggauss(n)


def gauss_legendre(f, a, b, n=400):
    """Gauss-Legendre quadrature of a vectorised numpy function on [a, b]."""
    t, w = _nodes(n)
    x = 0.5 * (b - a) * t + 0.5 * (b + a)
    return 0.5 * (b - a) * np.sum(w * f(x))


def radial_integral(g, d, r, n=400):
    """int_0^R g(rho) drho for g with an integrable (R - rho)^alpha edge singularity, alpha = 1 - (d+r)/2.

    Plain Gauss-Legendre on [0, R/2]; on [R/2, R] the substitution rho = R sqrt(1 - w),
    w = v^(1/(alpha+1)) makes the integrand smooth in v. Nodes with w < 1e-10 (where R^2 - rho^2
    would lose digits) use w = 1e-10; the integrand is flat in v there.
    """
    big_r = analytic.prox_radius(d, r)
    alpha = 1 - (d + r) / 2
    p = 1 / (alpha + 1)

    def integrand(v):
        w = np.maximum(v**p, 1e-10)
        rho = big_r * np.sqrt(1 - w)
        drho_dw = big_r / (2 * np.sqrt(1 - w))
        dw_dv = p * w / np.maximum(v, 1e-10 ** (1 / p))   # p v^(p-1) = p w / v
        return g(rho) * drho_dw * dw_dv

    return gauss_legendre(g, 0.0, big_r / 2, n) + gauss_legendre(integrand, 0.0, 0.75 ** (alpha + 1), n)


def sphere_average_by_quadrature(d, r):
    """M_r(d) = E|e - w|^r for w uniform on S^{d-1}, from w_1 = cos(theta) with density ~ sin^{d-2}."""
    num = gauss_legendre(lambda th: (2 - 2 * np.cos(th)) ** (r / 2) * np.sin(th) ** (d - 2), 0, np.pi)
    den = gauss_legendre(lambda th: np.sin(th) ** (d - 2), 0, np.pi)
    return num / den


def frostman_potential(x, y, r):
    """U(x) = |x|^2/2 - mean_j |x - y_j|^r and the Monte Carlo standard error of the mean, per row of x."""
    dist = torch.cdist(x, y) ** r
    return 0.5 * (x**2).sum(1) - dist.mean(1), dist.std(1) / math.sqrt(y.shape[0])


# ----------------------------------------------------------------------------- radii

def test_known_radii():
    assert analytic.prox_radius(2, 1.0) == pytest.approx(math.pi / 4, rel=1e-13)
    assert analytic.prox_radius(1, 1.0) == pytest.approx(1.0, rel=1e-13)
    assert analytic.prox_radius(3, 1.0) == pytest.approx(2 / 3, rel=1e-13)
    assert analytic.support_radius(0.6, 2, 1.0) == pytest.approx(math.pi * 0.6 / 4, rel=1e-13)
    assert analytic.support_radius(0.7, 1, 1.0) == pytest.approx(0.7, rel=1e-13)
    assert analytic.support_radius(0.9, 3, 1.0) == pytest.approx(2 * 0.9 / 3, rel=1e-13)
    assert analytic.support_radius(0.0, 2, 0.5) == 0.0
    np.testing.assert_allclose(analytic.support_radius(np.array([0.2, 0.4]), 2, 1.0), [math.pi / 20, math.pi / 10])


def test_case_split():
    assert not analytic.is_sphere_case(2, 1.9)
    assert not analytic.is_sphere_case(3, 0.99)
    assert analytic.is_sphere_case(3, 1.0)
    assert analytic.is_sphere_case(4, 0.1)


@pytest.mark.parametrize("d", [2, 3, 4, 7, 50])
@pytest.mark.parametrize("r", [0.3, 1.0, 1.7])
def test_sphere_mean_distance_by_quadrature(d, r):
    # the integrand behaves like theta^r at theta = 0, which limits the quadrature to ~1e-8
    assert analytic.sphere_mean_distance(d, r) == pytest.approx(sphere_average_by_quadrature(d, r), rel=1e-7)


def test_radius_continuous_across_the_case_split():
    """At d + r = 4 the ball formula (r -> 1 from below in d = 3) meets the sphere formula."""
    assert analytic.prox_radius(3, 1 - 1e-9) == pytest.approx(analytic.prox_radius(3, 1.0), rel=1e-7)


def test_large_dimension_is_finite():
    big = analytic.prox_radius(2000, 1.0)
    assert math.isfinite(big) and 0.5 < big < 1.0   # R* -> 1/sqrt(2) as d -> infinity for r = 1


# ----------------------------------------------------------------------------- densities

@pytest.mark.parametrize("d,r", BALL)
def test_density_integrates_to_one(d, r):
    total = radial_integral(lambda rho: analytic.prox_radial_density(rho, d, r), d, r)
    assert total == pytest.approx(1.0, abs=2e-6)


def test_density_d2_r1_is_the_radial_arcsine_law():
    rho = np.array([0.0, 0.3, 0.7])
    expected = 2 / math.pi**2 / np.sqrt((math.pi / 4) ** 2 - rho**2)
    np.testing.assert_allclose(analytic.prox_density(rho, 2, 1.0), expected, rtol=1e-12)
    assert analytic.prox_density(0.8, 2, 1.0) == 0.0


def test_density_keeps_the_input_kind():
    t = torch.tensor([0.1, 0.2], dtype=torch.float32)
    out = analytic.prox_density(t, 2, 0.5)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert isinstance(analytic.prox_density(0.1, 2, 0.5), float)


def test_flow_density_scales_the_prox_density():
    t, d, r = 0.6, 2, 1.0
    rho = np.array([0.1, 0.3, 0.45])
    expected = 2 / (math.pi**2 * t) / np.sqrt((math.pi * t / 4) ** 2 - rho**2)
    np.testing.assert_allclose(analytic.flow_density(rho, t, d, r), expected, rtol=1e-12)


def test_density_rejects_sphere_case():
    with pytest.raises(ValueError, match="d=3, r=1.0"):
        analytic.prox_density(0.1, 3, 1.0)


@pytest.mark.parametrize("d,r", BALL)
@pytest.mark.parametrize("k", [1, 2, 4])
def test_radial_moments_match_density(d, r, k):
    by_quadrature = radial_integral(lambda rho: rho**k * analytic.prox_radial_density(rho, d, r), d, r)
    assert analytic.radial_moment(k, d, r) == pytest.approx(by_quadrature, rel=5e-6)


# ----------------------------------------------------------------------------- samplers

@pytest.mark.parametrize("shape", [0.05, 0.3, 1.0, 2.5, 40.0])
def test_gamma_sampler_moments(shape, gen):
    n = 200_000
    x = analytic.sample_gamma(shape, n, generator=gen)
    assert x.dtype == torch.float64 and bool((x >= 0).all())
    # mean a, variance a, E X^2 = a (a + 1) with Var X^2 = a(a+1)(a+2)(a+3) - a^2(a+1)^2
    se_mean = math.sqrt(shape / n)
    assert abs(x.mean().item() - shape) < 5 * se_mean
    var_x2 = shape * (shape + 1) * (shape + 2) * (shape + 3) - (shape * (shape + 1)) ** 2
    assert abs((x**2).mean().item() - shape * (shape + 1)) < 5 * math.sqrt(var_x2 / n)


@pytest.mark.parametrize("d,r", BALL + SPHERE)
def test_sampler_matches_radial_moments(d, r, gen):
    n = 100_000
    x = analytic.sample_prox(n, d, r, gen)
    assert x.shape == (n, d) and x.dtype == torch.float64
    rho = x.norm(dim=1)
    big_r = analytic.prox_radius(d, r)
    assert rho.max().item() <= big_r * (1 + 1e-12)
    for k in (1, 2):
        sample, se = (rho**k).mean().item(), (rho**k).std().item() / math.sqrt(n)
        assert abs(sample - analytic.radial_moment(k, d, r)) <= 5 * se + 1e-12
    # isotropy: the mean is zero and each coordinate carries 1/d of E|X|^2
    assert x.mean(0).abs().max().item() < 5 * big_r / math.sqrt(n)
    np.testing.assert_allclose((x**2).mean(0).numpy(), (rho**2).mean().item() / d, rtol=0.05)


def test_sampler_radial_law_d2_r1(gen):
    """d=2, r=1: P(|X| <= rho) = 1 - sqrt(1 - rho^2/R^2) (integral of the arcsine density)."""
    n = 100_000
    rho = analytic.sample_prox(n, 2, 1.0, gen).norm(dim=1).numpy()
    big_r = math.pi / 4
    for q in (0.2, 0.5, 0.9, 0.99):
        expected = 1 - math.sqrt(1 - q**2)
        assert abs(np.mean(rho <= q * big_r) - expected) < 5 * math.sqrt(expected * (1 - expected) / n)


def test_sample_flow_and_jko_are_dilations(gen):
    t, d, r = 0.6, 2, 1.5
    x = analytic.sample_flow(50_000, t, d, r, gen)
    assert x.norm(dim=1).max().item() <= analytic.support_radius(t, d, r) * (1 + 1e-12)
    assert x.norm(dim=1).max().item() > 0.99 * analytic.support_radius(t, d, r)
    y = analytic.sample_jko(10, 12, 0.05, d, r, torch.Generator().manual_seed(5))
    z = analytic.sample_prox(10, d, r, torch.Generator().manual_seed(5))
    torch.testing.assert_close(y, analytic.jko_scale(12, 0.05, r) * z)
    assert bool((analytic.sample_flow(7, 0.0, 3, 1.0, gen) == 0).all())


def test_sampler_generator_controls_everything():
    a = analytic.sample_prox(100, 3, 0.5, torch.Generator().manual_seed(7))
    b = analytic.sample_prox(100, 3, 0.5, torch.Generator().manual_seed(7))
    c = analytic.sample_prox(100, 3, 0.5, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_sampler_dtype_device():
    x = analytic.sample_flow(10, 0.3, 2, 1.0, torch.Generator().manual_seed(0), dtype=torch.float32)
    assert x.dtype == torch.float32 and x.device.type == "cpu"


# ----------------------------------------------------------------------------- Frostman condition

@pytest.mark.parametrize("d,r", BALL + [(3, 0.9)] + SPHERE)
def test_frostman_condition(d, r, gen):
    r"""U(x) = |x|^2/2 - \int |x-y|^r d eta*(y) is constant on supp eta* and not smaller off it.

    Monte Carlo with 200k exact samples; each U(x) carries a standard error s(x) (std of
    |x - y|^r over sqrt(n)); comparisons allow 5 combined standard errors.
    """
    n = 200_000
    y = analytic.sample_prox(n, d, r, gen)
    big_r = analytic.prox_radius(d, r)
    dirs = analytic.sample_prox(4, d, r, torch.Generator().manual_seed(99))
    dirs = dirs / dirs.norm(dim=1, keepdim=True)
    if analytic.is_sphere_case(d, r):
        on = big_r * dirs                                                     # points of the sphere
        off = torch.cat([torch.zeros(1, d, dtype=torch.float64), 0.5 * big_r * dirs[:2], 1.3 * big_r * dirs[2:]])
        # (at d + r = 4 the potential is flat inside the sphere: equality, not a violation)
    else:
        radii = torch.tensor([0.0, 0.3, 0.6, 0.9], dtype=torch.float64)[:, None]
        on = big_r * radii * dirs
        off = big_r * torch.tensor([1.1, 1.5], dtype=torch.float64)[:, None] * dirs[:2]
    u_on, se_on = frostman_potential(on, y, r)
    u_off, se_off = frostman_potential(off, y, r)
    c, se_c = u_on.mean(), se_on.max()
    assert (u_on - c).abs().max().item() <= 5 * math.sqrt(2) * se_c.item(), (u_on, se_on)
    assert (u_off - c).min().item() >= -5 * math.sqrt(2) * max(se_off.max().item(), se_c.item()), (u_off, c)
    # the test has teeth: a radius outside the support the excess is clearly positive
    u_far, se_far = frostman_potential(2 * big_r * dirs[:2], y, r)
    assert (u_far - c).min().item() > 10 * max(se_far.max().item(), se_c.item())


@pytest.mark.parametrize("d,r", [(2, 1.0), (2, 1.5), (3, 0.5)])
def test_frostman_fails_for_a_sphere_when_d_plus_r_below_4(d, r, gen):
    """Negative control: in the ball case the uniform measure on the sphere (with the radius that is
    optimal among spheres, R^(2-r) = r/2 M_r(d)) violates the Frostman condition at the centre."""
    n = 200_000
    radius = (r / 2 * analytic.sphere_mean_distance(d, r)) ** (1 / (2 - r))
    z = torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = radius * z / z.norm(dim=1, keepdim=True)
    on = y[:3].clone()
    centre = torch.zeros(1, d, dtype=torch.float64)
    u_on, se_on = frostman_potential(on, y, r)
    u_c, se_c = frostman_potential(centre, y, r)
    assert (u_c - u_on.mean()).item() < -5 * math.sqrt(se_on.max().item() ** 2 + se_c.item() ** 2)


@pytest.mark.parametrize("d,r", [(2, 1.0), (3, 0.5), (4, 1.0)])
def test_energy_identity(d, r, gen):
    r"""E_K(eta*) = -1/2 E|X - X'|^r equals -1/r E|X|^2 (testing the pair law, not just radii)."""
    n = 200_000
    x1, x2 = analytic.sample_prox(n, d, r, gen), analytic.sample_prox(n, d, r, gen)
    pair = (x1 - x2).norm(dim=1) ** r
    assert abs(-0.5 * pair.mean().item() + analytic.second_moment(d, r) / r) < 5 * 0.5 * pair.std().item() / math.sqrt(n)


# ----------------------------------------------------------------------------- JKO and forward iterates

def test_jko_exact_for_r1():
    n = np.arange(0, 30)
    np.testing.assert_allclose(analytic.jko_scale(n, 0.05, 1.0), 0.05 * n, rtol=0, atol=1e-15)
    assert analytic.jko_scale(12, 0.05, 1.0) == pytest.approx(0.6, rel=1e-14)
    np.testing.assert_allclose(analytic.forward_scale(n, 0.1), 0.1 * n, atol=1e-15)
    # on the limit curve: gamma(n tau) has radius n tau R*
    assert analytic.jko_scale(8, 0.1, 1.0) == pytest.approx(analytic.flow_scale(0.8, 1.0), rel=1e-13)


@pytest.mark.parametrize("r", [0.2, 0.5, 1.5, 1.9])
@pytest.mark.parametrize("tau", [0.001, 0.05, 0.7])
def test_jko_solves_its_recursion(r, tau):
    c = analytic.jko_scale(np.arange(0, 40), tau, r)
    assert c[0] == 0 and c[1] == pytest.approx(tau ** (1 / (2 - r)), rel=1e-13)
    np.testing.assert_allclose(c[1:] - c[:-1], tau * c[1:] ** (r - 1), rtol=1e-11)
    assert bool((np.diff(c) > 0).all())


@pytest.mark.parametrize("r", [0.5, 1.5])
def test_jko_step_is_the_global_minimiser_over_dilations(r):
    r"""Restricted to dilations, the JKO objective is m2 [(c - a)^2/(2 tau) - c^r / r]."""
    tau = 0.1
    a = analytic.jko_scale(3, tau, r)
    c = analytic.jko_scale(4, tau, r)
    grid = np.linspace(0, 3 * c + 1, 200_001)
    obj = (grid - a) ** 2 / (2 * tau) - grid**r / r
    assert abs(grid[np.argmin(obj)] - c) < 2 * (grid[1] - grid[0])


@pytest.mark.parametrize("r", [0.5, 1.5])
@pytest.mark.parametrize("t", [1.0, 0.6])
def test_jko_converges_at_first_order_up_to_a_log(r, t):
    r"""c_N -> s(t) with error tau (a log(1/tau) + b), a = |1-r| s(t) / (2 (2-r)^2 t).

    Derivation: in u = c^(2-r) the JKO recursion reads u_n - u_{n-1} = (2-r) tau - (2-r)(1-r) tau^2/(2 u_n)
    + O(tau^3/u_n^2); summing the second term over u_n ~ (2-r) n tau gives -(1-r) tau log(N)/2, and
    dc = c du / ((2-r) u). So error/tau grows by a*log(4) each time tau is divided by 4 (a pure
    first-order error would keep error/tau constant; an order below one would make it grow geometrically).
    """
    taus = 0.01 / 4.0 ** np.arange(4)
    errors = np.array([abs(analytic.jko_scale(int(round(t / tau)), tau, r) - analytic.flow_scale(t, r))
                       for tau in taus])
    increments = np.diff(errors / taus) / math.log(4)
    a = abs(1 - r) * analytic.flow_scale(t, r) / (2 * (2 - r) ** 2 * t)
    assert bool((np.diff(increments) > 0).all())                 # approaching a from below (O(tau) rest)
    np.testing.assert_allclose(increments[-2:], a, rtol=0.03)
    slope = np.polyfit(np.log(taus), np.log(errors), 1)[0]
    assert 0.8 < slope < 1.0, (slope, errors)


def test_jko_known_values():
    """c_12 at tau=0.05 against gamma(0.6): r=0.5 lags (0.892 vs 0.932), r=1.5 leads (0.122 vs 0.090)."""
    assert analytic.jko_scale(12, 0.05, 0.5) == pytest.approx(0.8923, abs=5e-4)
    assert analytic.flow_scale(0.6, 0.5) == pytest.approx(1.5 ** (2 / 3) * 0.6 ** (2 / 3), rel=1e-13)
    assert analytic.jko_scale(12, 0.05, 1.5) == pytest.approx(0.1219, abs=5e-4)
    assert analytic.flow_scale(0.6, 1.5) == pytest.approx(0.09, rel=1e-13)


def test_jko_scalar_and_array_types():
    assert isinstance(analytic.jko_scale(3, 0.1, 0.5), float)
    out = analytic.jko_scale(torch.tensor([1, 2]), 0.1, 0.5)
    assert isinstance(out, np.ndarray) and out.shape == (2,)


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize("call,match", [
    (lambda: analytic.prox_radius(0, 1.0), "d=0"),
    (lambda: analytic.prox_radius(2.5, 1.0), "d=2.5"),
    (lambda: analytic.prox_radius(2, 2.0), "r=2.0"),
    (lambda: analytic.prox_radius(2, 0), "r=0"),
    (lambda: analytic.support_radius(-0.1, 2, 1.0), "t=-0.1"),
    (lambda: analytic.support_radius(np.array([0.1, -2.0]), 2, 1.0), "-2.0"),
    (lambda: analytic.jko_scale(3, 0.0, 1.0), "tau"),
    (lambda: analytic.jko_scale(-1, 0.1, 1.0), "n=-1"),
    (lambda: analytic.jko_scale(1.5, 0.1, 1.0), "n=1.5"),
    (lambda: analytic.forward_scale(3, 0.1, 1.5), "r=1.5"),
    (lambda: analytic.sample_prox(0, 2, 1.0), "n=0"),
    (lambda: analytic.sample_flow(5, float("nan"), 2, 1.0), "t=nan"),
    (lambda: analytic.sample_prox(5, 2, 2.5), "r=2.5"),
    (lambda: analytic.radial_moment(-3, 2, 1.0), "k=-3"),
])
def test_errors_name_the_bad_value(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_frostman_potential_helper_d1_r1(gen):
    """d=1, r=1: eta* = U[-1, 1], so U(x) = -1/2 on [-1, 1] and x^2/2 - |x| outside (closed form)."""
    x = torch.tensor([[0.0], [0.5], [-0.9], [1.5], [-2.0]], dtype=torch.float64)
    u, se = analytic.frostman_potential(x, 1, 1.0, n_samples=100_000, generator=gen)
    expected = torch.tensor([-0.5, -0.5, -0.5, 1.125 - 1.5, 2.0 - 2.0], dtype=torch.float64)
    assert ((u - expected).abs() <= 5 * se + 1e-12).all(), (u, se)
    with pytest.raises(ValueError, match=r"\(P, 2\)"):
        analytic.frostman_potential(x, 2, 1.0)


def test_regularized_beta_closed_form_and_quadrature():
    u = np.linspace(0.0, 1.0, 11)
    assert np.allclose(analytic.regularized_beta(u, 1.0, 0.5), 1.0 - np.sqrt(1.0 - u), atol=1e-13)   # Beta(1, 1/2)
    s = np.linspace(0.0, 0.7, 400_001)
    numeric = np.trapezoid(s**1.5 * (1 - s) ** 2.7, s) / math.exp(math.lgamma(2.5) + math.lgamma(3.7) - math.lgamma(6.2))
    assert analytic.regularized_beta(0.7, 2.5, 3.7) == pytest.approx(numeric, rel=1e-9)


@pytest.mark.parametrize("d, r", [(2, 0.5), (3, 0.5), (2, 1.0), (3, 1.0)])
def test_radial_cdf_matches_exact_samples(d, r):
    t = 0.8
    rad = analytic.sample_flow(100_000, t, d, r, torch.Generator().manual_seed(1)).norm(dim=1).numpy()
    rho = np.linspace(0.0, 1.1 * analytic.support_radius(t, d, r), 12)
    emp = np.array([(rad <= q).mean() for q in rho])
    exact = analytic.radial_cdf(rho, d, r, t=t)
    if analytic.is_sphere_case(d, r):
        exact = analytic.radial_cdf(rho * (1 + 1e-9), d, r, t=t)    # the step sits exactly at R(t)
    assert np.abs(emp - exact).max() < 0.01
    assert analytic.radial_cdf(torch.tensor(rho), d, r, t=t).dtype == torch.float64

# ----------------------------------------------------------------------------- radial CDF, Euler recursion, the shell

@pytest.mark.parametrize("a,b,closed", [
    (1.0, 1.0, lambda x: x), (2.5, 1.0, lambda x: x**2.5), (1.0, 0.3, lambda x: 1 - (1 - x) ** 0.3),
    (0.5, 0.5, lambda x: 2 / np.pi * np.arcsin(np.sqrt(x))), (2.0, 2.0, lambda x: 3 * x**2 - 2 * x**3),
])
def test_regularized_beta_closed_forms(a, b, closed):
    x = np.linspace(0, 1, 41)
    assert np.allclose(analytic.regularized_beta(x, a, b), closed(x), atol=2e-14)


@pytest.mark.parametrize("d,r", BALL)
def test_radial_cdf_is_the_integral_of_the_radial_density(d, r):
    big_r = analytic.prox_radius(d, r)
    for q in (0.2, 0.5, 0.8, 0.95):
        by_quadrature = gauss_legendre(lambda rho: analytic.prox_radial_density(rho, d, r), 0.0, q * big_r)
        assert analytic.prox_radial_cdf(q * big_r, d, r) == pytest.approx(by_quadrature, rel=1e-9)
    assert analytic.prox_radial_cdf(big_r, d, r) == pytest.approx(1.0, abs=1e-14)
    t = 0.7   # gamma(t) is a dilation of eta*: its radial CDF is the same function of rho / s(t)
    s = analytic.flow_scale(t, r)
    assert analytic.flow_radial_cdf(0.5 * s * big_r, t, d, r) == pytest.approx(analytic.prox_radial_cdf(0.5 * big_r, d, r))


@pytest.mark.parametrize("d,r", SPHERE[:3])
def test_radial_cdf_is_a_step_in_the_sphere_case(d, r):
    big_r = analytic.prox_radius(d, r)
    assert list(analytic.prox_radial_cdf(np.array([0.5, 0.999999, 1.0, 1.2]) * big_r, d, r)) == [0, 0, 1, 1]


def test_euler_scale_is_exact_for_r1_and_converges_to_the_ode_solution():
    assert analytic.euler_scale(7, 0.1, 1.0, 1e-9) == pytest.approx(0.7 + 1e-9, rel=1e-14)
    c0, t, r = 1e-9, 0.6, 1.5
    exact = (c0 ** (2 - r) + (2 - r) * t) ** (1 / (2 - r))          # c' = c^{r-1}
    errors = [abs(analytic.euler_scale(round(t / tau), tau, r, c0) / exact - 1) for tau in (0.01, 0.001, 0.0001)]
    assert errors[0] > 0.1 and errors[2] < 0.003
    assert errors[1] < errors[0] / 5 and errors[2] < errors[1] / 5      # first order up to a logarithm


def test_inside_the_sphere_at_d_plus_r_4_particles_move_with_the_dilation(gen):
    """d = 3, r = 1: the field of gamma(t) inside its sphere is x / t, the dilation's: mass inside stays inside."""
    from mmdflow.kernels import Riesz
    from mmdflow.summation import kernel_sum_grad

    t = 0.9
    shell = analytic.sample_flow(400_000, t, 3, 1.0, gen)            # uniform on the sphere of radius 2t/3
    inner = torch.tensor([[0.1, 0.0, 0.0], [0.0, 0.3, 0.1], [0.2, -0.2, 0.3]], dtype=torch.float64) * t
    velocity = -kernel_sum_grad(inner, shell, Riesz(1.0))            # -grad of int K(x, y) dgamma(y) = field
    assert torch.allclose(velocity, inner / t, atol=3e-3)
    # for d + r > 4 (d = 3, r = 1.5) the inner mass moves a little faster than the dilation (Monte Carlo error
    # about 0.3%): it slides outwards, slowly
    s = analytic.flow_scale(t, 1.5)
    shell15 = analytic.sample_flow(400_000, t, 3, 1.5, gen)
    x = torch.tensor([[0.3, 0.0, 0.0]], dtype=torch.float64) * analytic.support_radius(t, 3, 1.5)
    v15 = -kernel_sum_grad(x, shell15, Riesz(1.5))
    dilation = x * s ** (1.5 - 2)                                    # s'/s x = s^{r-2} x
    assert 1.015 < float(v15[0, 0]) / float(dilation[0, 0]) < 1.04
