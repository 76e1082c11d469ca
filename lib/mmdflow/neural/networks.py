r"""The networks of the neural schemes and the pieces of their explicit training engine.

:class:`GenerativeMLP` (the paper's MLP for :math:`T_\theta` and :math:`v_\theta`), :func:`make_network` and
:func:`make_optimizer`, and for the ``explicit`` engine (:mod:`mmdflow.neural`): the MLP's written-out forward and
backward passes (:class:`_ExplicitMLP`) and Adam steps on a ``torch.optim.Adam``'s state (:class:`_Adam`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .._checks import check_int

__all__ = ["GenerativeMLP", "make_network", "make_optimizer"]


class GenerativeMLP(nn.Module):
    r"""The MLP :math:`(x, z)\mapsto` ``net(cat(x, z))`` used for :math:`T_\theta` and :math:`v_\theta`.

    Architecture (paper, Sec. 6): ``Linear(d + d_z, width), ReLU``, then ``(hidden_layers - 1)``
    times ``[Linear(width, width), ReLU]``, then ``Linear(width, d)``. The weights are drawn from
    ``generator`` with PyTorch's default law :math:`U(-1/\sqrt{\text{fan\_in}}, 1/\sqrt{\text{fan\_in}})`.

    Shapes: ``x`` ``[N, d]``, ``z`` ``[N, d_z]`` -> ``[N, d]``.
    """

    def __init__(self, d: int, *, latent_dim: int | None = None, width: int = 64, hidden_layers: int = 2,
                 device=None, dtype: torch.dtype = torch.float32, generator: torch.Generator | None = None):
        super().__init__()
        self.d = check_int(d, "d", 1)
        self.latent_dim = check_int(latent_dim if latent_dim is not None else d, "latent_dim", 1)
        check_int(width, "width", 1)
        check_int(hidden_layers, "hidden_layers", 1)
        sizes = [self.d + self.latent_dim] + [width] * hidden_layers + [self.d]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            lin = nn.utils.skip_init(nn.Linear, a, b, device=device if device is not None else "cpu", dtype=dtype)
            bound = 1.0 / math.sqrt(a)
            with torch.no_grad():
                lin.weight.copy_(torch.rand(b, a, generator=generator, device=lin.weight.device,
                                            dtype=dtype) * (2 * bound) - bound)
                lin.bias.copy_(torch.rand(b, generator=generator, device=lin.weight.device,
                                          dtype=dtype) * (2 * bound) - bound)
            layers.append(lin)
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The network's output ``net(cat(x, z))``.

        Args:
            x: points ``[N, d]``.
            z: latents ``[N, d_z]``.

        Returns:
            ``[N, d]`` tensor.
        """
        return self.net(torch.cat([x, z], dim=1))


def make_network(d: int, config: _NeuralConfig, *, device=None, generator: torch.Generator | None = None
                 ) -> GenerativeMLP:
    """The network of a scheme's config, for particles of dimension ``d``.

    Args:
        d: the dimension of the particles.
        config: a neural scheme's config (``latent_dim``, ``width``, ``hidden_layers``, ``dtype``).
        device: the device of the parameters.
        generator: the source of the initial weights.

    Returns:
        A :class:`GenerativeMLP`.
    """
    return GenerativeMLP(d, latent_dim=config.latent_dim, width=config.width, hidden_layers=config.hidden_layers,
                         device=device, dtype=config.torch_dtype, generator=generator)


def make_optimizer(net: nn.Module, config: _NeuralConfig) -> torch.optim.Adam:
    """Adam with the config's learning rate (the paper's optimiser), fused on CPU/GPU when available.

    Args:
        net: the network.
        config: a neural scheme's config (``lr``).

    Returns:
        A ``torch.optim.Adam``.
    """
    try:
        return torch.optim.Adam(net.parameters(), lr=config.lr, fused=True)
    except (RuntimeError, TypeError):  # pragma: no cover - older torch or unsupported device
        return torch.optim.Adam(net.parameters(), lr=config.lr)


def _mlp_layers(net) -> list | None:
    """The ``(weight, bias)`` pairs of a :class:`GenerativeMLP` (Linear, ReLU, ..., Linear), else ``None``."""
    if not isinstance(net, GenerativeMLP):
        return None
    mods = list(net.net)
    if not all(isinstance(m, nn.Linear) for m in mods[0::2]) or not all(isinstance(m, nn.ReLU) for m in mods[1::2]) \
            or len(mods) % 2 == 0:
        return None
    return [(m.weight, m.bias) for m in mods[0::2]]


class _Adam:
    """Adam steps on the state of a ``torch.optim.Adam`` (so that its ``state_dict`` checkpoints them), through
    the functional ``torch.optim.adam.adam`` with the optimiser's hyper-parameters and its fused/foreach choice:
    the same update as ``optimizer.step()`` without its per-call bookkeeping."""

    def __init__(self, optimizer: torch.optim.Adam, params: list):
        from torch.optim import adam as adam_module

        self.fn = adam_module.adam
        self.group = optimizer.param_groups[0]
        self.params = params
        fused, capturable = bool(self.group.get("fused")), bool(self.group.get("capturable"))
        for p in params:
            state = optimizer.state[p]
            if len(state) == 0:      # the lazy initialisation of torch.optim.Adam
                state["step"] = (torch.zeros((), dtype=torch.float32, device=p.device) if fused or capturable
                                 else torch.tensor(0.0, dtype=torch.float32))
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        self.exp_avgs = [optimizer.state[p]["exp_avg"] for p in params]
        self.exp_avg_sqs = [optimizer.state[p]["exp_avg_sq"] for p in params]
        self.steps = [optimizer.state[p]["step"] for p in params]
        self.options = dict(foreach=self.group.get("foreach"), fused=self.group.get("fused"), capturable=capturable,
                            amsgrad=False, beta1=self.group["betas"][0], beta2=self.group["betas"][1],
                            lr=self.group["lr"], weight_decay=0.0, eps=self.group["eps"], maximize=False)

    @torch.no_grad()
    def step(self, grads: list) -> None:
        self.fn(self.params, grads, self.exp_avgs, self.exp_avg_sqs, [], self.steps, **self.options)


class _ExplicitMLP:
    r"""Forward and written-out backward pass of a :class:`GenerativeMLP` :math:`h_{k+1} = \mathrm{relu}(h_k W_k^T
    + b_k)` (no ReLU after the last layer): :math:`\partial W_k = g_k^T h_k`, :math:`\partial b_k = \sum g_k`,
    :math:`g_{k-1} = (g_k W_k)\odot\mathbf 1[h_k > 0]`."""

    def __init__(self, net: GenerativeMLP):
        self.layers = _mlp_layers(net)
        self.params = [t for pair in self.layers for t in pair]

    def forward(self, inp: torch.Tensor) -> tuple[torch.Tensor, list]:
        acts, h = [inp], inp
        last = len(self.layers) - 1
        for k, (w, b) in enumerate(self.layers):
            h = torch.addmm(b, h, w.T)
            if k < last:
                h = h.relu_()
                acts.append(h)
        return h, acts

    def backward(self, acts: list, g: torch.Tensor) -> list:
        grads = [None] * len(self.params)
        for k in range(len(self.layers) - 1, -1, -1):
            h = acts[k]
            grads[2 * k] = g.T @ h
            grads[2 * k + 1] = g.sum(0)
            if k > 0:
                g = torch.ops.aten.threshold_backward(g @ self.layers[k][0], h, 0)
        return grads
