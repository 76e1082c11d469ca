r"""The training of the neural schemes' networks: the two-batch losses and the Adam loop with its two engines.

The neural backward (JKO) step minimises :func:`backward_loss`,
:math:`\tfrac12 W + \tau\hat F(X^1, X^2)` with :math:`X^k_i = T_\theta(x^k_i, z^k_i)` for two independent batches,
and the neural forward step minimises :func:`forward_loss`, :math:`\hat D_vF/(\|\hat v\|+\varepsilon)`
(Altekrüger, Hertrich, Steidl, ICML 2023, Secs. 3-4). :func:`train_backward` and :func:`train_forward` run the Adam
iterations with one of the :data:`ENGINES`: ``explicit`` (written-out gradients of the loss and of the MLP,
:func:`explicit_engine_supported` says when it applies) or ``autograd``, the reference it is tested against.
:mod:`mmdflow.neural` exports every public name and builds the time steps and runners on them.
"""

from __future__ import annotations

from typing import Callable

import torch

from .networks import _Adam, _ExplicitMLP, _mlp_layers

__all__ = ["backward_loss", "forward_loss", "train_backward", "train_forward", "explicit_engine_supported", "ENGINES"]

#: how the neural losses are differentiated (see :class:`~mmdflow.neural.NeuralBackwardConfig`).
ENGINES = ("auto", "explicit", "autograd")


def _latent(n: int, net, like: torch.Tensor, generator) -> torch.Tensor:
    dz = getattr(net, "latent_dim", like.shape[1])
    return torch.randn(n, dz, generator=generator, device=like.device, dtype=like.dtype)


def _two_batches(x: torch.Tensor, b: int, generator):
    """Two independent index sets of size ``min(b, M)`` (each without repetition), as in the paper's code."""
    m = x.shape[0]
    b = min(b, m)
    i1 = torch.randperm(m, generator=generator, device=x.device)[:b]
    i2 = torch.randperm(m, generator=generator, device=x.device)[:b]
    return x[i1], x[i2]


# ----------------------------------------------------------------------------------------------
# losses
# ----------------------------------------------------------------------------------------------

def backward_loss(net: Callable, energy, x1: torch.Tensor, x2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor,
                  tau: float) -> tuple[torch.Tensor, dict]:
    r"""Two-batch loss of one neural backward (JKO) step (paper Sec. 3, code ``NeuralBackwardScheme``).

    With :math:`X^k_i = T(x^k_i, z^k_i)` for the two independent batches ``k = 1, 2`` of size ``B``:

    .. math::
        W = \frac{1}{2B}\sum_{k=1,2}\sum_i \|x^k_i - X^k_i\|^2, \qquad
        L = \tfrac12 W + \tau\,\hat F(X^1, X^2),

    where :math:`\hat F` is ``energy.batch_estimate`` (cross pairs :math:`(X^1_i, X^2_j)` for the
    interaction term, both batches against the target for a potential term). :math:`L` is
    :math:`\tau` times the JKO objective :math:`\frac1{2\tau}W_\pi + F`.

    Args:
        net: callable ``(x, z) -> X``.
        energy: an object with ``batch_estimate(x1, x2)``.
        x1, x2: particle batches ``[B, d]``.
        z1, z2: latents ``[B, d_z]``.
        tau: time step.

    Returns:
        ``(loss, metrics)``: the 0-d loss (differentiable in the network's parameters) and a dict
        of floats ``loss``, ``transport`` (:math:`W`), ``energy`` (:math:`\hat F`).
    """
    loss, terms = _backward_terms(net, energy, x1, x2, z1, z2, tau)
    return loss, {k: float(v) for k, v in terms.items()}


def _backward_terms(net, energy, x1, x2, z1, z2, tau):
    """:func:`backward_loss` with its metrics as detached 0-d tensors (no host synchronisation)."""
    b1 = x1.shape[0]
    xs = torch.cat([x1, x2])
    out = net(xs, torch.cat([z1, z2]))                 # one pass for both batches (the MLP acts row-wise)
    out1, out2 = out[:b1], out[b1:]
    transport = (xs - out).pow(2).sum(1).mean()
    f_hat = energy.batch_estimate(out1, out2)
    loss = 0.5 * transport + tau * f_hat
    return loss, {"loss": loss.detach(), "transport": transport.detach(), "energy": f_hat.detach()}


def forward_loss(net: Callable, energy, x1: torch.Tensor, x2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor,
                 eps: float = 1e-2) -> tuple[torch.Tensor, dict]:
    r"""Two-batch loss of the neural forward scheme (paper Sec. 4, code ``NeuralForwardScheme``).

    With velocities :math:`u^k_i = v(x^k_i, z^k_i)`,

    .. math::
        \hat D = \text{energy.batch\_directional\_derivative}(x^1, u^1, x^2, u^2), \qquad
        \|\hat v\| = \Big(\frac1{2B}\sum_{k,i}\|u^k_i\|^2\Big)^{1/2}, \qquad
        L = \frac{\hat D}{\|\hat v\| + \varepsilon},

    the (regularised) directional derivative of :math:`F` in the normalised direction :math:`v/\|v\|`.

    Returns:
        ``(loss, metrics)`` with floats ``loss``, ``derivative`` (:math:`\hat D`), ``norm`` (:math:`\|\hat v\|`).

    Args:
        net: the velocity network :math:`v_\theta`, ``(x [B, d], z [B, d_z]) -> [B, d]``.
        energy: the functional; needs ``batch_directional_derivative(x1, u1, x2, u2)``.
        x1: first batch ``[B1, d]``.
        x2: second batch ``[B2, d]``.
        z1: latents ``[B1, d_z]`` of the first batch.
        z2: latents ``[B2, d_z]`` of the second batch.
        eps: the regulariser :math:`\varepsilon` of the norm.

    Returns:
        ``(loss, metrics)``: the 0-d loss :math:`L` (differentiable in the network's parameters) and a dict of floats
        ``loss``, ``derivative`` (:math:`\hat D`), ``norm`` (:math:`\|\hat v\|`).
    """
    loss, terms = _forward_terms(net, energy, x1, x2, z1, z2, eps)
    return loss, {k: float(v) for k, v in terms.items()}


def _forward_terms(net, energy, x1, x2, z1, z2, eps):
    """:func:`forward_loss` with its metrics as detached 0-d tensors (no host synchronisation)."""
    b1 = x1.shape[0]
    u = net(torch.cat([x1, x2]), torch.cat([z1, z2]))
    u1, u2 = u[:b1], u[b1:]
    norm = u.pow(2).sum(1).mean().sqrt()
    deriv = energy.batch_directional_derivative(x1, u1, x2, u2)
    loss = deriv / (norm + eps)
    return loss, {"loss": loss.detach(), "derivative": deriv.detach(), "norm": norm.detach()}


# ----------------------------------------------------------------------------------------------
# one time step
# ----------------------------------------------------------------------------------------------

def explicit_engine_supported(net, optimizer, energy, scheme: str) -> str | None:
    """Why the explicit engine cannot train ``net`` with ``optimizer`` on ``energy`` for ``scheme``
    (``"backward"``/``"forward"``), or ``None`` when it can.

    Args:
        net: the network.
        optimizer: its optimiser.
        energy: the functional.
        scheme: ``"backward"`` or ``"forward"``.

    Returns:
        A sentence naming the reason, or ``None``.
    """
    if _mlp_layers(net) is None:
        return f"the network is a {type(net).__name__}, not a GenerativeMLP"
    if type(optimizer) is not torch.optim.Adam or len(optimizer.param_groups) != 1 \
            or optimizer.param_groups[0]["amsgrad"] or optimizer.param_groups[0]["weight_decay"] \
            or optimizer.param_groups[0]["maximize"]:
        return "the optimiser is not a plain torch.optim.Adam (one group, no amsgrad, weight decay or maximize)"
    method = "batch_estimate_and_grad" if scheme == "backward" else "batch_directional_derivative_and_grad"
    if not hasattr(energy, method):
        return f"the energy {type(energy).__name__} has no {method} method"
    return None


def _choose_engine(engine: str, net, optimizer, energy, scheme: str) -> str:
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine == "autograd":
        return engine
    why = explicit_engine_supported(net, optimizer, energy, scheme)
    if why is None:
        return "explicit"
    if engine == "explicit":
        raise TypeError(f"engine='explicit' cannot train this step: {why}; use engine='autograd' or 'auto'")
    return "autograd"


def _explicit_backward_terms(mlp, energy, x1, x2, z1, z2, tau):
    r"""Loss, metrics and parameter gradients of :func:`backward_loss`: :math:`\partial L/\partial X_k =
    (X_k - x_k)/(2B) + 	au
abla_{X_k}\hat F` (:meth:`batch_estimate_and_grad`), then the MLP's backward pass."""
    b1 = x1.shape[0]
    xs = torch.cat([x1, x2])
    out, acts = mlp.forward(torch.cat([xs, torch.cat([z1, z2])], 1))
    f_hat, g1, g2 = energy.batch_estimate_and_grad(out[:b1], out[b1:])
    diff = out - xs
    transport = diff.square().sum(1).mean()
    loss = 0.5 * transport + tau * f_hat
    g_out = torch.cat([g1, g2]).mul_(tau).add_(diff, alpha=1.0 / out.shape[0])
    return {"loss": loss, "transport": transport, "energy": f_hat}, mlp.backward(acts, g_out)


def _explicit_forward_terms(mlp, energy, x1, x2, z1, z2, eps):
    r"""Loss, metrics and parameter gradients of :func:`forward_loss`: with :math:`n = \|\hat v\|`,
    :math:`\partial L/\partial u_k = \nabla_{u_k}\hat D/(n+\varepsilon) - \hat D\,u_k/\big(2B\,n\,(n+\varepsilon)^2\big)`."""
    b1 = x1.shape[0]
    u, acts = mlp.forward(torch.cat([torch.cat([x1, x2]), torch.cat([z1, z2])], 1))
    deriv, g1, g2 = energy.batch_directional_derivative_and_grad(x1, u[:b1], x2, u[b1:])
    norm = u.square().sum(1).mean().sqrt()
    scale = 1.0 / (norm + eps)
    loss = deriv * scale
    coef = loss * scale / (norm * u.shape[0]).clamp_min(torch.finfo(u.dtype).tiny)
    g_out = torch.cat([g1, g2]).mul_(scale).sub_(u * coef)
    return {"loss": loss, "derivative": deriv, "norm": norm}, mlp.backward(acts, g_out)


def _train(scheme, energy, net, optimizer, x, iterations, batch_size, generator, engine, param):
    """Adam iterations of one scheme; metrics averaged on the device over the last iterations (at most 100) and
    read once at the end (no host synchronisation inside the loop)."""
    engine = _choose_engine(engine, net, optimizer, energy, scheme)
    tail = max(1, min(100, iterations // 10))
    acc, last = None, None
    if engine == "explicit":
        mlp = _ExplicitMLP(net)
        adam = _Adam(optimizer, mlp.params)
        terms = _explicit_backward_terms if scheme == "backward" else _explicit_forward_terms
    else:
        terms = _backward_terms if scheme == "backward" else _forward_terms
    for it in range(iterations):
        x1, x2 = _two_batches(x, batch_size, generator)
        z1 = _latent(x1.shape[0], net, x, generator)
        z2 = _latent(x2.shape[0], net, x, generator)
        if engine == "explicit":
            with torch.no_grad():
                last, grads = terms(mlp, energy, x1, x2, z1, z2, param)
                adam.step(grads)
        else:
            optimizer.zero_grad(set_to_none=True)
            loss, last = terms(net, energy, x1, x2, z1, z2, param)
            loss.backward()
            optimizer.step()
        if it >= iterations - tail:
            row = torch.stack([v.detach() for v in last.values()])
            acc = row / tail if acc is None else acc.add_(row, alpha=1.0 / tail)
    if acc is None:
        return {}
    return dict(zip(last, acc.tolist()))


def train_backward(net, optimizer, energy, x: torch.Tensor, tau: float, *, iterations: int, batch_size: int,
                   generator: torch.Generator | None = None, engine: str = "auto") -> dict:
    """Run ``iterations`` Adam steps on :func:`backward_loss` at the particles ``x`` ``[M, d]``.

    ``engine``: ``"explicit"``, ``"autograd"`` or ``"auto"`` (see :class:`NeuralBackwardConfig`).
    Returns the metrics averaged over the last iterations (at most 100).

    Args:
        net: the network :math:`T_\\theta`.
        optimizer: its optimiser (Adam).
        energy: the functional; needs ``batch_estimate(x1, x2)``.
        x: particles ``[M, d]``.
        tau: the step size :math:`\\tau`.
        iterations: the number of Adam steps.
        batch_size: the batch size.
        generator: the source of batches and latents.
        engine: ``"explicit"``, ``"autograd"`` or ``"auto"``.

    Returns:
        A dict of float metrics.
    """
    return _train("backward", energy, net, optimizer, x, iterations, batch_size, generator, engine, tau)


def train_forward(net, optimizer, energy, x: torch.Tensor, *, iterations: int, batch_size: int, eps: float = 1e-2,
                  generator: torch.Generator | None = None, engine: str = "auto") -> dict:
    """Run ``iterations`` Adam steps on :func:`forward_loss` at the particles ``x`` ``[M, d]`` (``engine`` as in
    :func:`train_backward`).

    Args:
        net: the velocity network :math:`v_\\theta`.
        optimizer: its optimiser (Adam).
        energy: the functional; needs ``batch_directional_derivative(x1, u1, x2, u2)``.
        x: particles ``[M, d]``.
        iterations: the number of Adam steps.
        batch_size: the batch size.
        eps: the regulariser of :func:`forward_loss`.
        generator: the source of batches and latents.
        engine: ``"explicit"``, ``"autograd"`` or ``"auto"``.

    Returns:
        A dict of float metrics averaged over the last iterations (at most 100).
    """
    return _train("forward", energy, net, optimizer, x, iterations, batch_size, generator, engine, eps)
