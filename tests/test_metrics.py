"""The accuracy metric: D_K^2 (r = 1) to an exact law, and its noise floor, against closed forms."""

import math

import pytest
import torch

from mmdflow import analytic, metrics


def uniform_interval(n, generator):
    """Exact sampler of U[0, 1] in d = 1 (E|X - X'| = 1/3)."""
    return torch.rand(n, 1, generator=generator, dtype=torch.float64)


def within(value, expected, std, n_repeats, k=4.0):
    return abs(value - expected) <= k * std / math.sqrt(n_repeats)


def test_noise_floor_is_mean_distance_over_n(gen):
    r"""For independent n-samples, E D_K^2 = E|X - X'| / n (V-statistic: the diagonal vanishes)."""
    n, reps = 200, 40
    res = metrics.compare_to_exact(uniform_interval(n, gen), uniform_interval, n_repeats=reps, generator=gen)
    assert within(res.noise, 1 / (3 * n), res.noise_std, reps), res


def test_exact_sample_is_at_the_noise_level(gen):
    r"""For a fixed x, d2 averages over y only; over fresh exact x its expectation is again E|X-X'|/n."""
    n, n_x = 200, 30
    d2 = torch.tensor([metrics.compare_to_exact(uniform_interval(n, gen), uniform_interval, n_repeats=2,
                                                generator=gen).d2 for _ in range(n_x)])
    assert within(d2.mean().item(), 1 / (3 * n), d2.std().item(), n_x), d2


def test_noise_floor_of_the_flow_law(gen):
    r"""gamma(t) for d=2, r=1: E|X - X'| by Monte Carlo from the exact sampler, noise = that / n."""
    t, n, reps = 0.6, 300, 12
    big = analytic.sample_flow(100_000, t, 2, 1.0, gen)
    mean_dist = (big[:50_000] - big[50_000:]).norm(dim=1).mean().item()
    x = analytic.sample_flow(n, t, 2, 1.0, gen)
    res = metrics.flow_error(x, t, 1.0, n_repeats=reps, generator=gen)
    assert within(res.noise, mean_dist / n, res.noise_std, reps), (res, mean_dist / n)
    assert res.ratio < 3


def test_wrong_law_is_far_above_the_noise(gen):
    """U[0, a] against U[0, 1], a = 1.2: D_K^2 = E|X-Y| - E|X-X'|/2 - E|Y-Y'|/2 with E|X-X'| = a/3,
    E|Y-Y'| = 1/3 and E|X-Y| = (1/a) int_0^1 (y^2 + (a-y)^2)/2 dy = (1/3 + (a^3 - (a-1)^3)/3) / (2a)."""
    n, reps = 500, 5
    a = 1.2
    x = a * uniform_interval(n, gen)
    e_xy = (1 / 3 + (a**3 - (a - 1) ** 3) / 3) / (2 * a)
    exact = e_xy - 0.5 * (1 / 3) - 0.5 * (a / 3)          # = 0.00444...
    res = metrics.compare_to_exact(x, uniform_interval, n_repeats=reps, generator=gen)
    assert res.d2 > 10 * res.noise
    # the empirical value = population value + O(1/n) noise
    assert abs(res.d2 - exact) < 3 * res.noise + 4 * res.d2_std / math.sqrt(reps)


def test_flow_error_detects_the_wrong_time(gen):
    x = analytic.sample_flow(400, 0.5, 2, 1.0, gen)
    right = metrics.flow_error(x, 0.5, 1.0, generator=gen)
    wrong = metrics.flow_error(x, 0.6, 1.0, generator=gen)
    assert right.d2 < 3 * right.noise
    assert wrong.d2 > 5 * wrong.noise


def test_accepts_float32_and_keeps_results_as_floats(gen):
    x = analytic.sample_flow(100, 0.3, 3, 1.0, gen, dtype=torch.float32)
    res = metrics.flow_error(x, 0.3, 1.0, n_repeats=2, generator=gen)
    assert all(isinstance(v, float) for v in res)
    one = metrics.flow_error(x, 0.3, 1.0, n_repeats=1, generator=gen)
    assert math.isnan(one.d2_std) and math.isnan(one.noise_std)


def test_generator_makes_it_reproducible():
    x = analytic.sample_flow(100, 0.3, 2, 0.5, torch.Generator().manual_seed(0))
    a = metrics.flow_error(x, 0.3, 0.5, generator=torch.Generator().manual_seed(3))
    b = metrics.flow_error(x, 0.3, 0.5, generator=torch.Generator().manual_seed(3))
    assert a == b


@pytest.mark.parametrize("call,match", [
    (lambda x: metrics.compare_to_exact(x, uniform_interval, n_repeats=0), "n_repeats=0"),
    (lambda x: metrics.compare_to_exact(x, lambda n, g: torch.zeros(n + 1, 1, dtype=torch.float64)), r"\(11, 1\)"),
    (lambda x: metrics.flow_error(x, -1.0, 1.0), "t=-1.0"),
    (lambda x: metrics.flow_error(x, 0.5, 2.0), "r=2.0"),
    (lambda x: metrics.flow_error(x[:, 0], 0.5, 1.0), "shape"),
])
def test_errors_name_the_bad_value(call, match):
    x = torch.rand(10, 1, dtype=torch.float64)
    with pytest.raises((ValueError, TypeError), match=match):
        call(x)


def test_expected_noise_closed_form(gen):
    """U[0, 1]: E|X - X'| = 1/3, so the expected noise floor is 1/(3n)."""
    value = metrics.expected_noise(uniform_interval, 500, n_pairs=200_000, generator=gen)
    # std of |X - X'| is sqrt(1/6 - 1/9) = 0.2357; 5 standard errors
    assert abs(value * 500 - 1 / 3) < 5 * 0.2357 / math.sqrt(200_000)
    with pytest.raises(ValueError, match="n=0"):
        metrics.expected_noise(uniform_interval, 0)


def test_flow_errors_on_an_exact_trajectory(gen):
    """A 'trajectory' of exact samples of gamma(t) is at the noise level with radius ratio ~1; a lagging
    one (the samples of gamma(t/2)) is not."""
    from mmdflow.trajectory import Trajectory

    times = torch.tensor([0.0, 0.3, 0.6], dtype=torch.float64)
    exact = torch.stack([analytic.sample_flow(300, float(t), 2, 1.5, gen) for t in times])
    lag = torch.stack([analytic.sample_flow(300, float(t) / 2, 2, 1.5, gen) for t in times])
    good = metrics.flow_errors(Trajectory(times, exact, torch.zeros(3)), 1.5, generator=gen)
    bad = metrics.flow_errors(Trajectory(times, lag, torch.zeros(3)), 1.5, generator=gen)
    torch.testing.assert_close(good.times, times[1:])
    assert bool((good.d2 < 4 * good.noise).all()) and bool((bad.d2 > 10 * bad.noise).all())
    # mean radius scales like t^(1/(2-r)) = t^2 for r = 1.5: the lagging one has a quarter of it
    torch.testing.assert_close(good.radius_ratio, torch.ones(2, dtype=torch.float64), rtol=0.05, atol=0)
    torch.testing.assert_close(bad.radius_ratio, torch.full((2,), 0.25, dtype=torch.float64), rtol=0.05, atol=0)


def test_gradient_error_against_closed_cases():
    """Exact against itself: 0; an estimator off by a factor 2: error exactly 1; sliced in d=1: exact."""
    from mmdflow import energies
    from mmdflow.energies import DiscrepancyEnergy
    from mmdflow.kernels import Riesz

    g = torch.Generator().manual_seed(0)
    y = torch.randn(30, 1, generator=g, dtype=torch.float64)
    x = torch.randn(20, 1, generator=g, dtype=torch.float64) + 0.5
    exact = DiscrepancyEnergy(Riesz(1.0), y, backend="dense")

    class Doubled:
        def gradient(self, x, w=None):
            return 2 * exact.gradient(x, w)

    assert metrics.gradient_error(exact, exact, x).relative_error == 0.0
    assert abs(metrics.gradient_error(Doubled(), exact, x, draws=2).relative_error - 1.0) < 1e-12
    est = energies.SlicedDiscrepancyEnergy(Riesz(1.0), y, generator=g)
    res = metrics.gradient_error(est, exact, x, draws=3)
    assert res.relative_error < 1e-12 and res.draws == 3 and res.seconds > 0
    with pytest.raises(ValueError, match="draws must be a positive integer, got 0"):
        metrics.gradient_error(est, exact, x, draws=0)
    at_target = torch.full((3, 1), 7.0, dtype=torch.float64)     # coinciding points exert no force
    with pytest.raises(ValueError, match="reference gradient is zero"):
        metrics.gradient_error(est, DiscrepancyEnergy(Riesz(1.0), at_target, backend="dense"), at_target)


# ------------------------------------------------------------------------------------------------ radial statistics

def test_radial_statistics_of_exact_samples():
    g = torch.Generator().manual_seed(11)
    for d, r in [(2, 1.0), (3, 0.5), (1, 1.0)]:          # ball case: Kolmogorov distance about 0.87 / sqrt(N)
        st = metrics.radial_statistics(analytic.sample_flow(2000, 0.8, d, r, g), 0.8, r)
        assert st.cdf_distance < 1.95 / 2000**0.5         # the 99.9% quantile of Kolmogorov's law
        assert abs(st.shell_fraction - st.exact_shell_fraction) < 4 * (0.25 / 2000) ** 0.5
    # d = 2, r = 1: |X|^2 / R^2 ~ Beta(1, 1/2), so the mass within 5% of R is sqrt(1 - 0.95^2)
    st = metrics.radial_statistics(analytic.sample_flow(10, 0.8, 2, 1.0, g), 0.8, 1.0)
    assert st.exact_shell_fraction == pytest.approx((1 - 0.95**2) ** 0.5, rel=1e-12)
    assert st.radius == pytest.approx(0.8 * math.pi / 4, rel=1e-12)
    for r in (1.0, 1.5):                                  # sphere case: all mass on the shell
        st = metrics.radial_statistics(analytic.sample_flow(500, 1.2, 3, r, g), 1.2, r)
        assert (st.shell_fraction, st.exact_shell_fraction, st.cdf_distance) == (1.0, 1.0, 0.0)


def test_radial_statistics_see_a_thick_shell_that_the_discrepancy_cannot():
    g = torch.Generator().manual_seed(12)
    t, big_r = 1.2, analytic.support_radius(1.2, 3, 1.0)
    u = torch.randn(400, 3, generator=g, dtype=torch.float64)
    radii = big_r * (0.2 + 0.8 * torch.rand(400, 1, generator=g, dtype=torch.float64))   # radii spread 0.2 .. 1 R
    x = u / u.norm(dim=1, keepdim=True) * radii
    st = metrics.radial_statistics(x, t, 1.0)
    # uniform radii on [0.2, 1] R: 1/16 of them within 5% of R; every radius below R, so the CDF distance is 1
    assert abs(st.shell_fraction - 0.05 / 0.8) < 0.04 and st.cdf_distance == 1.0
    # the half shell outside: a sample at 1.1 R is as far off, from the other side
    assert metrics.radial_statistics(x / radii * 1.1 * big_r, t, 1.0).cdf_distance == 1.0
