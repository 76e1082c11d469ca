"""Tests of the neural backward/forward schemes (mmdflow.neural) against hand-computed values and closed forms."""

import math

import pytest
import torch

from mmdflow import analytic, energies, kernels, neural
from mmdflow.schemes import get_scheme


@pytest.fixture(autouse=True)
def _one_thread():
    # the training loops are made of tiny ops: on a shared 2-core machine one thread is several times faster
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _identity_plus_latent(x, z):
    return x + z


# ------------------------------------------------------------------------------------------------
# losses on tiny inputs, by hand
# ------------------------------------------------------------------------------------------------

def _tiny_batches():
    x1 = torch.tensor([[0.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    x2 = torch.tensor([[0.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    z2 = torch.tensor([[0.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    # outputs T = x + z: X1 = (1,0), (1,1); X2 = (0,0), (0,3)
    return x1, x2, z1, z2


def test_backward_loss_interaction_by_hand():
    x1, x2, z1, z2 = _tiny_batches()
    tau = 0.5
    energy = energies.InteractionEnergy(kernels.Riesz(1.0))
    loss, m = neural.backward_loss(_identity_plus_latent, energy, x1, x2, z1, z2, tau)
    transport = (1 + 1 + 0 + 1) / 4                                  # mean |x - T(x,z)|^2 = mean |z|^2
    f_hat = -0.5 * (1 + math.sqrt(10) + math.sqrt(2) + math.sqrt(5)) / 4   # cross pairs only
    assert m["transport"] == pytest.approx(transport, rel=1e-12)
    assert m["energy"] == pytest.approx(f_hat, rel=1e-12)
    assert float(loss) == pytest.approx(0.5 * transport + tau * f_hat, rel=1e-12)


@pytest.mark.parametrize("r", [0.5, 1.5])
def test_backward_loss_riesz_r_and_discrepancy_by_hand(r):
    x1, x2, z1, z2 = _tiny_batches()
    tau = 0.25
    y = torch.tensor([[0.0, 0.0], [2.0, 0.0]], dtype=torch.float64)
    energy = energies.DiscrepancyEnergy(kernels.Riesz(r), y)
    loss, m = neural.backward_loss(_identity_plus_latent, energy, x1, x2, z1, z2, tau)
    outs = [(1, 0), (1, 1), (0, 0), (0, 3)]
    cross_d = [1.0, math.sqrt(10), math.sqrt(2), math.sqrt(5)]     # |X1_i - X2_j|
    interaction = -0.5 * sum(dd**r for dd in cross_d) / 4
    potential = sum(0.5 * (math.hypot(a, b) ** r + math.hypot(a - 2, b) ** r) for a, b in outs) / 4
    target_energy = -0.5 * (2 * 2.0**r) / 4                          # E_K(nu) of the two target points
    f_hat = interaction + potential + target_energy
    assert m["energy"] == pytest.approx(f_hat, rel=1e-12)
    assert float(loss) == pytest.approx(0.5 * 0.75 + tau * f_hat, rel=1e-12)


def test_backward_loss_with_hand_set_network():
    # one hidden unit: T(x, z) = w2 * relu(x_1 + z_1 - 1) + b2, with w2 = (2, 0), b2 = (0, 1)
    net = neural.GenerativeMLP(2, width=1, hidden_layers=1, dtype=torch.float64)
    with torch.no_grad():
        lin1, lin2 = net.net[0], net.net[2]
        lin1.weight.copy_(torch.tensor([[1.0, 0.0, 1.0, 0.0]]))
        lin1.bias.fill_(-1.0)
        lin2.weight.copy_(torch.tensor([[2.0], [0.0]]))
        lin2.bias.copy_(torch.tensor([0.0, 1.0]))
    x1 = torch.tensor([[2.0, 0.0]], dtype=torch.float64)
    z1 = torch.tensor([[1.0, 5.0]], dtype=torch.float64)     # relu(2 + 1 - 1) = 2 -> T = (4, 1)
    x2 = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    z2 = torch.tensor([[0.5, 0.0]], dtype=torch.float64)     # relu(-0.5) = 0 -> T = (0, 1)
    energy = energies.InteractionEnergy(kernels.Riesz(1.0))
    loss, m = neural.backward_loss(net, energy, x1, x2, z1, z2, 0.1)
    transport = ((2 - 4) ** 2 + 1 + 0 + 1) / 2
    assert m["transport"] == pytest.approx(transport)
    assert m["energy"] == pytest.approx(-0.5 * 4.0)
    assert float(loss.detach()) == pytest.approx(0.5 * transport - 0.1 * 2.0)
    loss.backward()                                          # differentiable in the parameters
    assert net.net[0].weight.grad is not None and torch.isfinite(net.net[0].weight.grad).all()


def test_forward_loss_at_a_dirac_by_hand():
    # all particles at 0: every cross pair coincides and contributes -|u1 - u2| (r = 1)
    x = torch.zeros(2, 2, dtype=torch.float64)
    z1 = torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    z2 = torch.tensor([[0.0, 2.0], [0.0, 0.0]], dtype=torch.float64)
    energy = energies.InteractionEnergy(kernels.Riesz(1.0))
    loss, m = neural.forward_loss(lambda x_, z: z, energy, x, x, z1, z2, eps=1e-2)
    deriv = 0.5 * -(math.sqrt(5) + 1 + 2 + 0) / 4
    norm = math.sqrt((1 + 0 + 4 + 0) / 4)
    assert m["derivative"] == pytest.approx(deriv, rel=1e-12)
    assert m["norm"] == pytest.approx(norm, rel=1e-12)
    assert float(loss) == pytest.approx(deriv / (norm + 1e-2), rel=1e-12)
    # the energy's own method (reference) agrees with the fast path
    ref = energy.batch_directional_derivative(x, z1, x, z2)
    assert float(ref) == pytest.approx(deriv, rel=1e-12)


@pytest.mark.parametrize("r,expected", [(1.0, 0.5), (1.5, 0.75)])
def test_directional_derivative_separated_pair_by_hand(r, expected):
    # x1 = 0 moves right at speed 1 toward x2 = (1, 0): -1/2 |z|^r increases at rate r/2 * |z|^(r-1)
    x1, u1 = torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 0.0]])
    x2, u2 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.0]])
    energy = energies.InteractionEnergy(kernels.Riesz(r))
    assert float(energy.batch_directional_derivative(x1, u1, x2, u2)) == pytest.approx(expected)
    blocked = energies.InteractionEnergy(kernels.Riesz(r), backend="blocked")
    assert float(blocked.batch_directional_derivative(x1, u1, x2, u2)) == pytest.approx(expected)


def test_directional_derivative_potential_coinciding_by_hand():
    # a particle on a target point moving at speed 5 increases V = int |x - y| at rate 5
    y = torch.zeros(1, 2, dtype=torch.float64)
    x1, u1 = torch.zeros(1, 2, dtype=torch.float64), torch.tensor([[3.0, 4.0]], dtype=torch.float64)
    x2, u2 = torch.tensor([[10.0, 0.0]], dtype=torch.float64), torch.zeros(1, 2, dtype=torch.float64)
    energy = energies.DiscrepancyEnergy(kernels.Riesz(1.0), y)
    interaction = 0.5 * 3.0                     # z = x1 - x2 = (-10, 0), w = (3, 4): -<z, w>/|z| = 3
    potential = (5.0 + 0.0) / 2                 # mean over both batches; x2 does not move
    got = float(energy.batch_directional_derivative(x1, u1, x2, u2))
    assert got == pytest.approx(interaction + potential)


@pytest.mark.parametrize("r", [0.5, 1.0, 1.5])
@pytest.mark.parametrize("with_target", [False, True])
def test_directional_derivative_matches_finite_differences(r, with_target):
    g = torch.Generator().manual_seed(3)
    x1, x2 = torch.randn(7, 3, generator=g, dtype=torch.float64), torch.randn(5, 3, generator=g, dtype=torch.float64)
    u1, u2 = torch.randn(7, 3, generator=g, dtype=torch.float64), torch.randn(5, 3, generator=g, dtype=torch.float64)
    if with_target:
        y = torch.randn(4, 3, generator=g, dtype=torch.float64)
        energy = energies.DiscrepancyEnergy(kernels.Riesz(r), y)
        u2 = torch.randn(7, 3, generator=g, dtype=torch.float64)
        x2 = torch.randn(7, 3, generator=g, dtype=torch.float64)
    else:
        energy = energies.InteractionEnergy(kernels.Riesz(r))
    blocked = (energies.DiscrepancyEnergy(kernels.Riesz(r), y, backend="blocked") if with_target
               else energies.InteractionEnergy(kernels.Riesz(r), backend="blocked"))
    h = 1e-6
    fd = (energy.batch_estimate(x1 + h * u1, x2 + h * u2) - energy.batch_estimate(x1 - h * u1, x2 - h * u2)) / (2 * h)
    ref = energy.batch_directional_derivative(x1, u1, x2, u2)
    fast = blocked.batch_directional_derivative(x1, u1, x2, u2)
    assert float(ref) == pytest.approx(float(fd), rel=1e-6)
    assert float(fast) == pytest.approx(float(ref), rel=1e-10)


@pytest.mark.parametrize("kernel", [kernels.Riesz(0.5), kernels.Riesz(1.0), kernels.Riesz(1.5), kernels.Gaussian(0.7)])
@pytest.mark.parametrize("with_target", [False, True])
def test_batch_estimate_matches_the_textbook_formula(kernel, with_target):
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(9, 2, generator=g, dtype=torch.float64, requires_grad=True)
    x2 = torch.randn(6, 2, generator=g, dtype=torch.float64)
    x2 = torch.cat([x2, x1[:1].detach()])                        # one coinciding cross pair
    if with_target:
        y = torch.randn(5, 2, generator=g, dtype=torch.float64)
        w = torch.rand(5, generator=g, dtype=torch.float64)
        energy = energies.DiscrepancyEnergy(kernel, y, w / w.sum())
    else:
        energy = energies.InteractionEnergy(kernel)
    # reference: the textbook formula from kernel matrices ([N, M, d] differences)
    ref = 0.5 * kernel(x1, x2).mean()
    if with_target:
        ref = ref - (kernel(torch.cat([x1, x2]), y) @ (w / w.sum())).mean() + 0.5 * (w / w.sum()) @ kernel(y, y) @ (w / w.sum())
    fast = energy.batch_estimate(x1, x2)
    assert float(fast.detach()) == pytest.approx(float(ref.detach()), rel=1e-12, abs=1e-14)
    (g_ref,) = torch.autograd.grad(ref, x1)
    (g_fast,) = torch.autograd.grad(fast, x1)
    assert torch.allclose(g_fast, g_ref, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# steps
# ------------------------------------------------------------------------------------------------

def test_forward_step_rate_by_hand():
    # v(x, z) = x on three distinct particles; batch1 >= M makes the two batches full permutations,
    # so D = -1/2 mean_ij |x_i - x_j| and |v|^2 = mean |x|^2: x <- x (1 + tau * D_+ / |v|^2)
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-1.0, -1.0]], dtype=torch.float64)
    energy = energies.InteractionEnergy(kernels.Riesz(1.0))
    pair = [math.dist(a, b) for a in x.tolist() for b in x.tolist()]
    d_plus = 0.5 * sum(pair) / 9
    norm2 = (1 + 4 + 2) / 3
    tau = 0.1
    net = lambda x_, z: x_  # noqa: E731
    net.latent_dim = 2
    new, m = neural.forward_step(net, None, energy, x, tau, iterations=0, batch_size=3, batch1=10,
                                 generator=torch.Generator().manual_seed(0))
    assert m["rate"] == pytest.approx(d_plus / norm2, rel=1e-12)
    assert torch.allclose(new, x * (1 + tau * d_plus / norm2), rtol=1e-12)


def test_forward_step_does_not_move_without_descent():
    # a constant velocity field does not change the interaction energy: D = 0, nothing moves
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-1.0, -1.0]], dtype=torch.float64)
    net = lambda x_, z: torch.ones_like(x_)  # noqa: E731
    new, m = neural.forward_step(net, None, energies.InteractionEnergy(kernels.Riesz(1.0)), x, 0.1, iterations=0,
                                 batch_size=3, batch1=3, generator=torch.Generator().manual_seed(0))
    assert m["rate"] == 0.0
    assert torch.equal(new, x)


def test_one_backward_step_from_dirac_has_the_prox_radius():
    # prox_{tau E}(delta_0) = (tau Id)#eta* for r = 1: in d = 2 the arcsine law on the disc of radius tau * pi/4,
    # whose radial second moment is 2/3 R^2 and whose 99% radius quantile is sqrt(1 - 0.01^2) R
    tau, m = 0.5, 1000
    cfg = neural.NeuralBackwardConfig(tau=tau, n_steps=1, iterations=300, width=32, lr=5e-3, batch_size=100)
    traj = neural.neural_backward_flow(energies.InteractionEnergy(kernels.Riesz(1.0)), torch.zeros(m, 2), cfg,
                                       generator=torch.Generator().manual_seed(0), progress=False)
    x = traj.positions[-1]
    radius = tau * analytic.prox_radius(2, 1.0)
    assert radius == pytest.approx(tau * math.pi / 4)
    rms = float(x.pow(2).sum(1).mean().sqrt())
    assert rms == pytest.approx(math.sqrt(2 / 3) * radius, rel=0.05)
    q99 = float(x.norm(dim=1).quantile(0.99))
    assert q99 == pytest.approx(radius, rel=0.15)
    assert float(x.mean(0).norm()) < 0.05 * radius


def test_one_forward_step_from_dirac_has_the_prox_radius():
    # for r = 1 the steepest-descent velocity plan at delta_0 is delta_0 x eta*, and the step is (tau Id)#eta*
    tau, m = 0.5, 1000
    cfg = neural.NeuralForwardConfig(tau=tau, n_steps=1, iterations=300, width=32, lr=5e-3, batch_size=100, batch1=m)
    traj = neural.neural_forward_flow(energies.InteractionEnergy(kernels.Riesz(1.0)), torch.zeros(m, 2), cfg,
                                      generator=torch.Generator().manual_seed(0), progress=False)
    x = traj.positions[-1]
    radius = tau * math.pi / 4
    rms = float(x.pow(2).sum(1).mean().sqrt())
    assert rms == pytest.approx(math.sqrt(2 / 3) * radius, rel=0.05)
    assert float(x.norm(dim=1).quantile(0.99)) == pytest.approx(radius, rel=0.25)


@pytest.mark.parametrize("kernel,slope", [(kernels.Laplace(0.5), -2.0), (kernels.Gaussian(1.0), 0.0),
                                          (kernels.Riesz(1.5), 0.0)])
def test_directional_derivative_coinciding_slopes(kernel, slope):
    # two coinciding points moving apart with relative velocity w: d/dt K(0, t w) = slope * |w| at t = 0+
    x = torch.zeros(1, 2, dtype=torch.float64)
    u1, u2 = torch.tensor([[3.0, 0.0]], dtype=torch.float64), torch.tensor([[0.0, -4.0]], dtype=torch.float64)
    energy = energies.InteractionEnergy(kernel)
    assert float(energy.batch_directional_derivative(x, u1, x, u2)) == pytest.approx(0.5 * slope * 5.0, abs=1e-12)


# ------------------------------------------------------------------------------------------------
# flows: checkpoints, resume, configs
# ------------------------------------------------------------------------------------------------

class _Stop(Exception):
    pass


def _stop_after(k):
    def cb(step, t, state):
        if step == k:
            raise _Stop

    return cb


@pytest.mark.parametrize("scheme", ["backward", "forward"])
def test_resume_after_interruption_gives_identical_particles(scheme, tmp_path):
    record = get_scheme(f"neural_{scheme}")
    flow, cls = record.run, record.config
    cfg = cls(tau=0.1, n_steps=4, iterations=15, width=8, batch_size=16, snapshot_every=2,
              **({"batch1": 32} if scheme == "forward" else {}))
    energy = energies.InteractionEnergy(kernels.Riesz(1.0))
    x0 = torch.zeros(40, 2)
    full = flow(energy, x0, cfg, generator=torch.Generator().manual_seed(5), progress=False)

    calls = []
    with pytest.raises(_Stop):
        flow(energy, x0, cfg, generator=torch.Generator().manual_seed(5), checkpoint_dir=tmp_path, progress=False,
             callback=_stop_after(3))
    saved = torch.load(tmp_path / neural.CHECKPOINT_NAME, weights_only=True)
    assert saved["step"] == 3
    # resume with a fresh generator of the same seed: the checkpoint restores its state after step 3 (a fresh
    # seed-5 generator would draw other batches); only step 4 is computed
    resumed = flow(energy, x0, cfg, generator=torch.Generator().manual_seed(5), checkpoint_dir=tmp_path,
                   progress=False, callback=lambda step, t, state: calls.append(step))
    assert calls == [4]
    assert torch.equal(resumed.positions, full.positions)
    assert torch.equal(resumed.times, full.times)
    assert [s["step"] for s in resumed.info["step_metrics"]] == [1, 2, 3, 4]


def test_resume_refuses_another_config(tmp_path):
    energy = energies.InteractionEnergy(kernels.Riesz(1.0))
    cfg = neural.NeuralBackwardConfig(tau=0.1, n_steps=1, iterations=2, width=4, batch_size=4)
    neural.neural_backward_flow(energy, torch.zeros(8, 2), cfg, generator=torch.Generator().manual_seed(0),
                                checkpoint_dir=tmp_path, progress=False)
    other = neural.NeuralBackwardConfig(tau=0.2, n_steps=1, iterations=2, width=4, batch_size=4)
    with pytest.raises(ValueError, match="tau"):
        neural.neural_backward_flow(energy, torch.zeros(8, 2), other, generator=torch.Generator().manual_seed(0),
                                    checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="initial particles"):
        neural.neural_backward_flow(energy, torch.ones(8, 2), cfg, generator=torch.Generator().manual_seed(0),
                                    checkpoint_dir=tmp_path, progress=False)


def test_flow_trajectory_shapes_dtype_and_snapshots():
    energy = energies.InteractionEnergy(kernels.Riesz(1.0))
    cfg = neural.NeuralBackwardConfig(tau=0.1, n_steps=5, iterations=3, width=4, batch_size=4, snapshot_every=2)
    traj = neural.neural_backward_flow(energy, torch.zeros(10, 3, dtype=torch.float64), cfg,
                                       generator=torch.Generator().manual_seed(0), progress=False)
    assert torch.allclose(traj.times, torch.tensor([0.0, 0.2, 0.4, 0.5], dtype=torch.float64))
    assert traj.positions.shape == (4, 10, 3) and traj.positions.dtype == torch.float64
    assert torch.equal(traj.positions[0], torch.zeros(10, 3, dtype=torch.float64))
    assert traj.energies[0] == 0 and bool((traj.energies[1:] < 0).all())
    assert [s["iterations"] for s in traj.info["step_metrics"]] == [3] * 5


def test_network_architecture_and_seeded_init():
    cfg = neural.NeuralBackwardConfig(width=16, hidden_layers=3, latent_dim=5)
    a = neural.make_network(2, cfg, generator=torch.Generator().manual_seed(1))
    b = neural.make_network(2, cfg, generator=torch.Generator().manual_seed(1))
    linears = [m for m in a.net if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(7, 16), (16, 16), (16, 16), (16, 2)]
    assert sum(isinstance(m, torch.nn.ReLU) for m in a.net) == 3
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb) and pa.dtype == torch.float32
    assert a(torch.zeros(4, 2), torch.zeros(4, 5)).shape == (4, 2)


def test_iteration_schedule_and_profiles():
    cfg = neural.NeuralBackwardConfig(iterations=10, iterations_start=30, start_time=1.0, tau=0.5)
    assert [cfg.iterations_at(n * cfg.tau) for n in range(4)] == [30, 30, 10, 10]


@pytest.mark.parametrize("kwargs,match", [
    ({"tau": -0.1}, "tau"), ({"n_steps": 0}, "n_steps"), ({"width": 2.5}, "width"),
    ({"batch_size": 0}, "batch_size"), ({"dtype": "float16"}, "dtype"), ({"lr": float("nan")}, "lr"),
])
def test_config_validation_names_the_bad_value(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        neural.NeuralBackwardConfig(**kwargs)
    with pytest.raises((ValueError, TypeError), match="batch1"):
        neural.NeuralForwardConfig(batch1=0)
    with pytest.raises(Exception):
        neural.NeuralBackwardConfig().tau = 1.0   # frozen


def test_bad_inputs_are_rejected():
    energy = energies.InteractionEnergy(kernels.Riesz(1.0))
    cfg = neural.NeuralBackwardConfig(n_steps=1, iterations=1)
    with pytest.raises(TypeError, match="NeuralBackwardConfig"):
        neural.neural_backward_flow(energy, torch.zeros(4, 2), neural.NeuralForwardConfig(), progress=False)
    with pytest.raises(TypeError, match="batch_estimate"):
        neural.neural_backward_flow(object(), torch.zeros(4, 2), cfg, progress=False)
    with pytest.raises(ValueError, match="shape"):
        neural.neural_backward_flow(energy, torch.zeros(4), cfg, progress=False)


@pytest.mark.parametrize("scheme", ["backward", "forward"])
@pytest.mark.parametrize("energy_kind", ["interaction", "discrepancy"])
def test_explicit_engine_follows_the_autograd_engine(scheme, energy_kind):
    """The written-out gradients and the direct Adam calls give the iterates of autograd + optimizer.step()
    (same batches and latents), including from a Dirac (coinciding particles)."""
    gen0 = torch.Generator().manual_seed(3)
    x = 0.3 * torch.randn(400, 2, generator=gen0, dtype=torch.float64)
    x[:150] = 0.0
    y = torch.rand(120, 2, generator=gen0, dtype=torch.float64) - 0.5
    energy = (energies.InteractionEnergy(kernels.Riesz(1.0)) if energy_kind == "interaction"
              else energies.DiscrepancyEnergy(kernels.Riesz(1.0), y))
    params, metrics = {}, {}
    for engine in ("autograd", "explicit"):
        gen = torch.Generator().manual_seed(0)
        cfg = neural.NeuralBackwardConfig(width=16, hidden_layers=3, dtype="float64", lr=1e-2)
        net = neural.make_network(2, cfg, generator=gen)
        opt = neural.make_optimizer(net, cfg)
        if scheme == "backward":
            metrics[engine] = neural.train_backward(net, opt, energy, x, 0.1, iterations=30, batch_size=50,
                                                    generator=gen, engine=engine)
        else:
            metrics[engine] = neural.train_forward(net, opt, energy, x, iterations=30, batch_size=50,
                                                   generator=gen, engine=engine)
        params[engine] = torch.cat([p.detach().flatten() for p in net.parameters()])
        assert int(opt.state[next(net.parameters())]["step"]) == 30     # the optimiser's own state was stepped
    start = neural.make_network(2, neural.NeuralBackwardConfig(width=16, hidden_layers=3, dtype="float64"),
                                generator=torch.Generator().manual_seed(0))
    moved = (params["autograd"] - torch.cat([p.detach().flatten() for p in start.parameters()])).abs().max()
    assert moved > 1e-3                                                 # the comparison is not between two no-ops
    torch.testing.assert_close(params["explicit"], params["autograd"], rtol=1e-9, atol=1e-11)
    for k in metrics["autograd"]:
        assert metrics["explicit"][k] == pytest.approx(metrics["autograd"][k], rel=1e-9, abs=1e-12)


def test_explicit_engine_refuses_what_it_cannot_train():
    energy = energies.InteractionEnergy(kernels.Riesz(1.0))
    x = torch.randn(20, 2)
    net = torch.nn.Sequential(torch.nn.Linear(4, 2))
    opt = torch.optim.Adam(net.parameters())
    with pytest.raises(TypeError, match="not a GenerativeMLP"):
        neural.train_backward(lambda a, z: net(torch.cat([a, z], 1)), opt, energy, x, 0.1, iterations=1,
                              batch_size=5, engine="explicit")
    with pytest.raises(ValueError, match="'fast'"):
        neural.NeuralBackwardConfig(engine="fast")
