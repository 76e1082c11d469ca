"""Checks that need CUDA (skipped without it): the explicit neural engine on the GPU agrees with the CPU and
never waits for the device inside the Adam loop."""

import pytest
import torch

from mmdflow import energies, kernels, neural

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def _train(device, scheme, energy, iterations=20):
    gen = torch.Generator(device=device).manual_seed(0)
    x = 0.3 * torch.randn(500, 2, generator=gen, device=device, dtype=torch.float64)
    x[:100] = 0.0
    cfg = neural.NeuralBackwardConfig(width=32, hidden_layers=2, dtype="float64", lr=1e-2)
    net = neural.make_network(2, cfg, device=device, generator=gen)
    opt = neural.make_optimizer(net, cfg)
    if scheme == "backward":
        neural.train_backward(net, opt, energy, x, 0.1, iterations=iterations, batch_size=64, generator=gen,
                              engine="explicit")
    else:
        neural.train_forward(net, opt, energy, x, iterations=iterations, batch_size=64, generator=gen,
                             engine="explicit")
    return torch.cat([p.detach().flatten() for p in net.parameters()])


@pytest.mark.parametrize("scheme", ["backward", "forward"])
def test_explicit_engine_never_synchronises_inside_the_loop(scheme):
    """One iteration of the loop body (batches, latents, loss, gradients, Adam) under CUDA's sync debug mode
    "error": any host synchronisation raises. Reading the metrics once at the end of a step is the one allowed."""
    y = torch.rand(200, 2, device="cuda", dtype=torch.float64) - 0.5
    energy = energies.DiscrepancyEnergy(kernels.Riesz(1.0), y, backend="dense")
    energy.target_energy                                           # computed once, outside the loop
    gen = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(500, 2, generator=gen, device="cuda", dtype=torch.float64)
    cfg = neural.NeuralBackwardConfig(width=32, hidden_layers=2, dtype="float64")
    net = neural.make_network(2, cfg, device="cuda", generator=gen)
    opt = neural.make_optimizer(net, cfg)
    mlp = neural._ExplicitMLP(net)
    adam = neural._Adam(opt, mlp.params)
    terms = neural._explicit_backward_terms if scheme == "backward" else neural._explicit_forward_terms
    param = 0.1 if scheme == "backward" else 1e-2

    def body():
        x1, x2 = neural._two_batches(x, 64, gen)
        z1, z2 = neural._latent(64, net, x, gen), neural._latent(64, net, x, gen)
        metrics, grads = terms(mlp, energy, x1, x2, z1, z2, param)
        adam.step(grads)
        return torch.stack(list(metrics.values()))

    with torch.no_grad():
        body()                                                     # warm-up: lazy initialisations
        torch.cuda.set_sync_debug_mode("error")
        try:
            rows = [body() for _ in range(5)]
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(torch.stack(rows)).all()


@pytest.mark.parametrize("scheme", ["backward", "forward"])
def test_explicit_engine_on_cuda_matches_autograd_on_cuda(scheme):
    energy = energies.InteractionEnergy(kernels.Riesz(1.0))
    explicit = _train("cuda", scheme, energy)
    gen = torch.Generator(device="cuda").manual_seed(0)
    x = 0.3 * torch.randn(500, 2, generator=gen, device="cuda", dtype=torch.float64)
    x[:100] = 0.0
    cfg = neural.NeuralBackwardConfig(width=32, hidden_layers=2, dtype="float64", lr=1e-2)
    net = neural.make_network(2, cfg, device="cuda", generator=gen)
    opt = neural.make_optimizer(net, cfg)
    if scheme == "backward":
        neural.train_backward(net, opt, energy, x, 0.1, iterations=20, batch_size=64, generator=gen, engine="autograd")
    else:
        neural.train_forward(net, opt, energy, x, iterations=20, batch_size=64, generator=gen, engine="autograd")
    reference = torch.cat([p.detach().flatten() for p in net.parameters()])
    torch.testing.assert_close(explicit, reference, rtol=1e-8, atol=1e-10)
