"""The bad-input matrix: one line per bad or edge input across the public API, the data loaders, checkpoints and
the step loop. Each case asserts the error type and that the message names the bad value (or the file, the
field, the size it is about), so that a reader learns what to fix. Cases marked ``# silent before`` returned a
wrong or stale result, or failed with a misleading message, before issue 13.
"""

from __future__ import annotations

import dataclasses
import numpy as np
import pytest
import torch

from mmdflow import _checks, analytic, energies, flows, metrics, neural, runtime, trajectory, wfr
from mmdflow.data import images, mnist
from mmdflow.experiments import ift as ift_exp
from mmdflow.experiments import interaction, scorecard, targets
from mmdflow.kernels import Gaussian, InverseMultiquadric, Laplace, Riesz
from mmdflow.summation import (Backend, directional_derivative, double_sum, kernel_matrix, kernel_sum,
                               kernel_sum_grad, register_backend)
from mmdflow.summation.directions import sample_directions, slicing_constant
from mmdflow.trajectory import CheckpointError, Trajectory

G = torch.Generator().manual_seed(0)
X = torch.randn(6, 2, generator=G, dtype=torch.float64)
Y = torch.randn(7, 2, generator=G, dtype=torch.float64)
X32 = X.float()
U = torch.randn(6, 2, generator=G, dtype=torch.float64)
K = Riesz(1.0)
NAN = X.clone()
NAN[2, 1] = float("nan")
INF = X.clone()
INF[4, 0] = float("inf")
HUGE = torch.full((6, 2), 1e20) * torch.randn(6, 2, generator=G)           # finite float32, squares overflow
TRAJ = Trajectory(times=torch.tensor([0.0, 0.2, 0.4], dtype=torch.float64), positions=torch.randn(3, 6, 2),
                  energies=torch.zeros(3, dtype=torch.float64), weights=torch.full((3, 6), 1 / 6))
TRAJ_U = TRAJ._replace(weights=None, positions=TRAJ.positions.double())
PF_CFG = flows.ParticleFlowConfig(tau=0.1, n_steps=2)
NB_CFG = neural.NeuralBackwardConfig(tau=0.1, n_steps=1, iterations=1, width=4, batch_size=4)
WFR_CFG = wfr.WFRConfig(n_steps=1, tau=0.1)


def _wfr(method, x, y, cfg=WFR_CFG, **kw):
    """wfr.wfr_flow of ``method`` from ``x`` for the Gaussian discrepancy (bandwidth 1) against ``y``."""
    return wfr.wfr_flow(energies.DiscrepancyEnergy(Gaussian(1.0), y), x, dataclasses.replace(cfg, method=method),
                        progress=False, **kw)
IMG = images.smiley_image(32)


class _NoFingerprint:
    def gradient(self, x, w=None):
        return torch.zeros_like(x)

    def value(self, x, w=None):
        return x.sum() * 0


def _w(values, dtype=torch.float64):
    return torch.tensor(values, dtype=dtype)


def _ckpt_file(tmp_path, content: bytes | None = None, obj=None):
    """A checkpoint folder whose file holds ``content`` (raw bytes) or ``torch.save(obj)``."""
    path = tmp_path / trajectory.CHECKPOINT_NAME
    if obj is not None:
        torch.save(obj, path)
    else:
        path.write_bytes(content)
    return tmp_path


def _truncated_checkpoint(tmp_path):
    full = tmp_path / "full"
    flows.particle_flow(energies.InteractionEnergy(K), X, PF_CFG, progress=False, checkpoint_dir=full)
    data = (full / trajectory.CHECKPOINT_NAME).read_bytes()
    return _ckpt_file(tmp_path, data[: len(data) // 2])


def _pf(folder):
    return flows.particle_flow(energies.InteractionEnergy(K), X, PF_CFG, progress=False, checkpoint_dir=folder)


def _budget(monkeypatch):
    monkeypatch.setattr(_checks, "MEMORY_BUDGET", 1000)


BIG = torch.randn(3000, 3, generator=G)        # 9e6 pairs: above a budget of 1000 bytes, and above the 16 MiB floor


# (id, call(tmp_path, monkeypatch), error type, text the message must contain)
CASES = [
    # ------------------------------------------------------------------ kernels
    ("riesz-r-out-of-range", lambda p, m: Riesz(2.5), ValueError, "r=2.5"),
    ("riesz-r-string", lambda p, m: Riesz("1"), TypeError, "'1'"),
    ("gaussian-negative-sigma", lambda p, m: Gaussian(-1.0), ValueError, "-1.0"),
    ("laplace-nan-sigma", lambda p, m: Laplace(float("nan")), ValueError, "nan"),
    ("imq-zero-sigma", lambda p, m: InverseMultiquadric(0), ValueError, "0"),
    ("kernel-1d-points", lambda p, m: K(torch.zeros(3), Y), ValueError, "shape (3,)"),
    ("kernel-integer-points", lambda p, m: K(torch.zeros(3, 2, dtype=torch.int64), Y), TypeError, "torch.int64"),
    ("kernel-nan-points", lambda p, m: K(NAN, Y), ValueError, "nan at index (2, 1)"),
    ("kernel-dimension-mismatch", lambda p, m: K(X, torch.zeros(3, 3, dtype=torch.float64)), ValueError, "2 and 3"),
    ("kernel-grad-nan", lambda p, m: K.grad(NAN, Y), ValueError, "nan at index (2, 1)"),            # silent before
    ("kernel-grad-dtype-mismatch", lambda p, m: K.grad(X32, Y), TypeError, "torch.float32 and torch.float64"),  # silent before
    ("kernel-huge-float32", lambda p, m: K(HUGE, HUGE), ValueError, "overflow to inf"),             # silent before
    ("kernel-matrix-over-budget", lambda p, m: (_budget(m), K(BIG, BIG)), MemoryError, "3000 x 3000 points"),  # silent before
    # ------------------------------------------------------------------ summation
    ("sum-unknown-backend", lambda p, m: kernel_sum(X, Y, K, backend="nope"), ValueError, "'nope'"),
    ("sum-kernel-not-a-kernel", lambda p, m: kernel_sum(X, Y, "riesz"), TypeError, "str"),
    ("sum-weights-wrong-shape", lambda p, m: kernel_sum(X, Y, K, torch.full((6,), 1 / 6, dtype=torch.float64)),
     ValueError, "(6,)"),
    ("sum-weights-negative", lambda p, m: kernel_sum(X, Y, K, _w([-0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.0])),
     ValueError, "-0.5"),
    ("sum-weights-sum-shows-digits", lambda p, m: kernel_sum(X, Y, K, _w([1 / 7] * 6 + [1 / 7 + 1e-7])),
     ValueError, "got sum 1.0000000999"),                                                                         # silent before
    ("sum-weights-dtype", lambda p, m: kernel_sum(X, Y, K, _w([1 / 7] * 7, torch.float32)), TypeError, "torch.float32"),
    ("sum-inf-points", lambda p, m: kernel_sum(INF, Y, K), ValueError, "inf at index (4, 0)"),
    ("sum-huge-float32", lambda p, m: kernel_sum(HUGE, HUGE, K), ValueError, "as large as"),       # silent before
    ("grad-huge-float32", lambda p, m: kernel_sum_grad(HUGE, HUGE, K), ValueError, "as large as"),  # silent before
    ("grad-nan-sources", lambda p, m: kernel_sum_grad(X, NAN, K), ValueError, "y contains a non-finite value nan"),
    ("double-sum-nan", lambda p, m: double_sum(NAN, X, K), ValueError, "nan"),
    ("dense-sum-over-budget", lambda p, m: (_budget(m), kernel_sum(BIG, BIG, Gaussian(1.0), backend="dense")),
     MemoryError, "backend='blocked'"),                                                                # silent before
    ("dense-grad-over-budget", lambda p, m: (_budget(m), kernel_sum_grad(BIG, BIG, K, backend="dense")),
     MemoryError, "3000 x 3000 points in d=3"),                                                       # silent before
    ("dense-double-sum-over-budget", lambda p, m: (_budget(m), double_sum(BIG, BIG, K, backend="dense")),
     MemoryError, "1000 B"),                                                                           # silent before
    ("gram-over-budget", lambda p, m: (_budget(m), kernel_matrix(BIG, BIG, K)), MemoryError, "Gram matrix"),  # silent before
    ("budget-env-garbage", lambda p, m: (m.setenv("MMDFLOW_MEMORY_BUDGET", "lots"), kernel_matrix(BIG, BIG, K)),
     ValueError, "'lots'"),
    ("dd-nan-velocity", lambda p, m: directional_derivative(X, NAN, X, U, K), ValueError, "ua contains"),  # silent before
    ("dd-inf-velocity-b", lambda p, m: directional_derivative(X, U, X, INF, K), ValueError, "ub contains"),  # silent before
    ("dd-velocity-shape", lambda p, m: directional_derivative(X, U[:3], X, None, K), ValueError, "(3, 2)"),
    ("dd-velocity-not-tensor", lambda p, m: directional_derivative(X, [1.0], X, None, K), TypeError, "list"),
    ("register-builtin-dense", lambda p, m: register_backend("dense", kernel_sum, kernel_sum_grad), ValueError,
     "'dense' is already built-in"),                                                                   # silent before
    ("register-auto", lambda p, m: register_backend("auto", kernel_sum, kernel_sum_grad), ValueError, "'auto'"),
    ("register-not-callable", lambda p, m: register_backend("mine", 1, 2), TypeError, "int"),
    ("backend-object-unknown", lambda p, m: Backend("nope"), ValueError, "'nope'"),
    ("directions-zero", lambda p, m: sample_directions(2, 0), ValueError, "n_directions=0"),
    ("directions-float", lambda p, m: sample_directions(2, 2.5), TypeError, "n_directions=2.5"),
    ("directions-rule", lambda p, m: sample_directions(2, 4, "bogus"), ValueError, "'bogus'"),
    ("directions-equispaced-3d", lambda p, m: sample_directions(3, 4, "equispaced"), ValueError, "d=3"),
    ("directions-bad-d", lambda p, m: sample_directions(0, 4), ValueError, "d=0"),
    ("slicing-constant-d0", lambda p, m: slicing_constant(0), ValueError, "d=0"),
    ("slicing-constant-r2", lambda p, m: slicing_constant(2, 2.0), ValueError, "r=2.0"),
    ("slicing-constant-float-d", lambda p, m: slicing_constant(2.5), TypeError, "d=2.5"),
    # ------------------------------------------------------------------ energies and functionals
    ("energy-kernel-not-a-kernel", lambda p, m: energies.InteractionEnergy("riesz"), TypeError, "str"),
    ("energy-target-nan", lambda p, m: energies.DiscrepancyEnergy(K, NAN), ValueError, "target contains"),
    ("energy-target-weights", lambda p, m: energies.DiscrepancyEnergy(K, Y, _w([0.5] * 7)), ValueError, "3.5"),
    ("energy-distance-backend", lambda p, m: energies.energy_distance(X, Y, backend="nope"), ValueError,
     "'nope'"),                                                                                        # silent before
    ("energy-distance-over-budget", lambda p, m: (_budget(m), energies.energy_distance(BIG, BIG, backend="dense")),
     MemoryError, "energy_distance"),                                                                  # silent before
    ("discrepancy-dimensions", lambda p, m: energies.discrepancy(X, torch.zeros(2, 3, dtype=torch.float64), K),
     ValueError, "2 and 3"),
    # ------------------------------------------------------------------ particle flows
    ("pf-tau-zero", lambda p, m: flows.ParticleFlowConfig(tau=0, n_steps=1), ValueError, "0"),
    ("pf-steps-zero", lambda p, m: flows.ParticleFlowConfig(tau=0.1, n_steps=0), ValueError, "n_steps=0"),
    ("pf-snapshot-dt", lambda p, m: flows.ParticleFlowConfig(tau=0.1, n_steps=1, snapshot_dt=-1.0), ValueError,
     "-1.0"),
    ("pf-until-not-multiple", lambda p, m: flows.ParticleFlowConfig.until(1.0, tau=0.3), ValueError, "t_final=1.0"),
    ("dirac-integer-dtype", lambda p, m: flows.perturbed_dirac(5, 2, dtype=torch.int64), TypeError,
     "torch.int64"),                                                                                   # silent before
    ("dirac-n-zero", lambda p, m: flows.perturbed_dirac(0, 2), ValueError, "n=0"),
    ("dirac-negative-scale", lambda p, m: flows.perturbed_dirac(5, 2, scale=-1.0), ValueError, "-1.0"),
    ("dirac-too-many-centers", lambda p, m: flows.perturbed_dirac(5, 2, centers=torch.zeros(6, 2, dtype=torch.float64)),
     ValueError, "n=5 < 6"),
    ("pf-energy-without-gradient", lambda p, m: flows.particle_flow(object(), X, PF_CFG, progress=False), TypeError,
     ".gradient"),
    ("pf-config-type", lambda p, m: flows.particle_flow(energies.InteractionEnergy(K), X, "cfg"), TypeError, "str"),
    ("pf-checkpoint-needs-fingerprint", lambda p, m: flows.particle_flow(_NoFingerprint(), X, PF_CFG, progress=False,
                                                                         checkpoint_dir=p),
     TypeError, "_NoFingerprint has none"),                                                            # silent before
    # ------------------------------------------------------------------ neural schemes
    ("nb-negative-tau", lambda p, m: neural.NeuralBackwardConfig(tau=-1.0), ValueError, "-1.0"),
    ("nb-float16", lambda p, m: neural.NeuralBackwardConfig(dtype="float16"), ValueError, "'float16'"),
    ("nf-batch1-zero", lambda p, m: neural.NeuralForwardConfig(batch1=0), ValueError, "batch1=0"),
    ("nb-checkpoint-needs-generator", lambda p, m: neural.neural_backward_flow(
        energies.InteractionEnergy(K), torch.zeros(8, 2), NB_CFG, checkpoint_dir=p, progress=False),
     ValueError, "needs an explicit, seeded generator"),                                              # silent before
    ("nb-generator-type", lambda p, m: neural.neural_backward_flow(
        energies.InteractionEnergy(K), torch.zeros(8, 2), NB_CFG, generator="seed", progress=False), TypeError, "str"),
    # ------------------------------------------------------------------ trajectories, the step loop, checkpoints
    ("at-between-snapshots", lambda p, m: TRAJ.at(0.3), ValueError, "no snapshot at t=0.3"),            # silent before
    ("at-after-the-end", lambda p, m: TRAJ.at(5.0), ValueError, "nearest is t=0.4"),                   # silent before
    ("at-negative-tol", lambda p, m: TRAJ.at(0.2, tol=-1), ValueError, "tol=-1"),
    ("at-string-time", lambda p, m: TRAJ.at("0.2"), TypeError, "'0.2'"),
    ("weights-at-between", lambda p, m: TRAJ.weights_at(0.1), ValueError, "no snapshot at t=0.1"),     # silent before
    ("run-steps-no-times", lambda p, m: trajectory.run_steps(lambda k, s: (s, None), trajectory.ParticleState(X),
                                                              times=[], progress=False), ValueError, "times"),
    ("checkpoint-truncated", lambda p, m: _pf(_truncated_checkpoint(p)), CheckpointError, "cannot be read"),  # silent before
    ("checkpoint-empty", lambda p, m: _pf(_ckpt_file(p, b"")), CheckpointError, "(0 bytes)"),           # silent before
    ("checkpoint-text-file", lambda p, m: _pf(_ckpt_file(p, b"hello")), CheckpointError,
     trajectory.CHECKPOINT_NAME),                                                                      # silent before
    ("checkpoint-foreign-dict", lambda p, m: _pf(_ckpt_file(p, obj={"step": 3})), CheckpointError,
     "found 'no format tag'"),                                                                         # silent before
    ("digest-unknown-object", lambda p, m: trajectory.digest(object()), TypeError, "object"),
    # ------------------------------------------------------------------ metrics
    ("flow-errors-time-without-snapshot", lambda p, m: metrics.flow_errors(TRAJ_U, 1.0, times=[0.3]), ValueError,
     "no snapshot at t=0.3"),                                                                          # silent before
    ("flow-errors-weighted", lambda p, m: metrics.flow_errors(TRAJ, 1.0), ValueError, "weights"),
    ("flow-error-negative-time", lambda p, m: metrics.flow_error(X, -1.0, 1.0), ValueError, "t=-1.0"),
    ("compare-repeats-zero", lambda p, m: metrics.compare_to_exact(X, lambda n, g: X, n_repeats=0), ValueError,
     "n_repeats=0"),
    ("radial-time-zero", lambda p, m: metrics.radial_statistics(X, 0.0, 1.0), ValueError, "t=0.0"),
    ("radial-band", lambda p, m: metrics.radial_statistics(X, 1.0, 1.0, band=1.5), ValueError, "band=1.5"),
    ("radial-r", lambda p, m: metrics.radial_statistics(X, 1.0, 3.0), ValueError, "r=3.0"),
    ("gradient-error-draws", lambda p, m: metrics.gradient_error(None, None, X, draws=0), ValueError, "0"),
    # ------------------------------------------------------------------ closed forms
    ("prox-radius-d0", lambda p, m: analytic.prox_radius(0, 1.0), ValueError, "d=0"),
    ("prox-density-sphere", lambda p, m: analytic.prox_density(0.1, 3, 1.0), ValueError, "d=3, r=1.0"),
    ("jko-negative-n", lambda p, m: analytic.jko_scale(-1, 0.1, 1.5), ValueError, "n=-1"),
    ("euler-scale-c0", lambda p, m: analytic.euler_scale(5, 0.1, 1.5, 0.0), ValueError, "c0 must be"),
    ("euler-scale-n", lambda p, m: analytic.euler_scale(-2, 0.1, 1.5, 1e-9), ValueError, "n=-2"),
    ("beta-negative-a", lambda p, m: analytic.regularized_beta(0.5, -1.0, 1.0), ValueError, "-1.0"),
    ("radial-cdf-time-zero", lambda p, m: analytic.flow_radial_cdf(0.5, 0.0, 2, 1.0), ValueError, "t=0.0"),
    ("sample-flow-negative-time", lambda p, m: analytic.sample_flow(10, -1.0, 2, 1.0), ValueError, "t=-1.0"),
    # ------------------------------------------------------------------ profiles
    ("profile-missing-entry", lambda p, m: runtime.for_profile("quick", {"paper": 3}), ValueError,
     "no entry for the profile 'quick'"),                                                              # silent before
    ("profile-typo-key", lambda p, m: runtime.for_profile("quick", {"quick": 1, "papr": 2}), ValueError,
     "['papr']"),                                                                                      # silent before
    ("profile-unknown", lambda p, m: runtime.for_profile("fast", 1), ValueError, "'fast'"),
    # ------------------------------------------------------------------ data
    ("samples-n-zero", lambda p, m: images.image_to_samples(IMG, 0), ValueError, "n=0"),
    ("samples-n-float", lambda p, m: images.image_to_samples(IMG, 2.5), TypeError, "n=2.5"),
    ("samples-integer-dtype", lambda p, m: images.image_to_samples(IMG, 5, dtype=torch.int32), TypeError,
     "torch.int32"),                                                                                   # silent before
    ("samples-missing-file", lambda p, m: images.image_to_samples(str(p / "none.png"), 5), FileNotFoundError,
     "none.png"),
    ("samples-not-an-image", lambda p, m: ((p / "notes.png").write_text("not a picture"),
                                           images.image_to_samples(p / "notes.png", 5)), ValueError,
     "notes.png"),                                                                                     # silent before
    ("density-negative-smoothing", lambda p, m: images.image_to_density(IMG, smoothing=-1), ValueError, "-1"),
    ("density-background", lambda p, m: images.image_to_density(IMG, background=2), ValueError, "2"),
    ("grey-two-channels", lambda p, m: images.grey_levels(np.zeros((5, 5, 2))), ValueError, "(5, 5, 2)"),
    ("grey-out-of-range", lambda p, m: images.grey_levels(np.full((5, 5), 2.0)), ValueError, "2"),
    ("smiley-too-small", lambda p, m: images.smiley_image(8), ValueError, "8"),
    ("text-empty", lambda p, m: images.text_image(""), ValueError, "''"),
    ("mnist-missing-files", lambda p, m: mnist.load_mnist(p / "nodata", download=False), FileNotFoundError,
     "t10k-images-idx3-ubyte.gz"),
    ("mnist-split", lambda p, m: mnist.load_mnist(p, split="val"), ValueError, "'val'"),
    ("mnist-n-zero", lambda p, m: mnist.load_mnist(p, n=0, download=False), ValueError, "n=0"),
    ("mnist-n-float", lambda p, m: mnist.load_mnist(p, n=2.5, download=False), TypeError, "n=2.5"),
    ("mnist-integer-dtype", lambda p, m: mnist.load_mnist(p, dtype=torch.uint8, download=False), TypeError,
     "torch.uint8"),                                                                                   # silent before
    ("mnist-total-timeout", lambda p, m: mnist.load_mnist(p, total_timeout=-1.0), ValueError, "-1.0"),
    # ------------------------------------------------------------------ weighted particles
    ("wfr-sigma", lambda p, m: wfr.wfr_flow(energies.DiscrepancyEnergy(Gaussian(0), Y), X, WFR_CFG), ValueError,
     "0"),                                                 # the kernel (of the energy) refuses the bandwidth
    ("wfr-tau", lambda p, m: wfr.WFRConfig(n_steps=1, tau=-1.0), ValueError, "-1.0"),
    ("wfr-method", lambda p, m: _wfr("bogus", X, Y), ValueError, "'bogus'"),
    ("wfr-noise-missing", lambda p, m: _wfr("mmd_noise", X, Y), ValueError, "config.noise"),
    ("wfr-mmd-with-weights", lambda p, m: _wfr("mmd", X, Y, w0=torch.full((6,), 1 / 6, dtype=torch.float64)),
     ValueError, "w0"),
    ("wfr-ift-over-budget", lambda p, m: (_budget(m), _wfr("ift", BIG, BIG)), MemoryError, "N = 3000"),                                                                         # silent before
    ("noise-schedule", lambda p, m: wfr.NoiseSchedule(beta0=0), ValueError, "0"),
    # ------------------------------------------------------------------ experiments
    ("interaction-profile", lambda p, m: interaction.interaction_settings("fast"), ValueError, "'fast'"),
    ("interaction-unknown-setting", lambda p, m: interaction.interaction_settings("quick", foo=1), ValueError,
     "['foo']"),
    ("interaction-pf-tau-not-divisor", lambda p, m: interaction.interaction_settings("quick", pf_tau=0.03),
     ValueError, "pf_tau=0.03"),
    ("interaction-scheme", lambda p, m: interaction.run_interaction_case(
        "sideways", 2, 1.0, interaction.interaction_settings("quick")), ValueError, "'sideways'"),
    ("interaction-forward-r", lambda p, m: interaction.run_interaction_case(
        "neural_forward", 2, 1.5, interaction.interaction_settings("quick")), ValueError, "r=1.5"),
    ("schedule-tau", lambda p, m: targets.NeuralSchedule(tau=0, iterations=1, batch_size=1), ValueError, "0"),
    ("schedule-unknown-field", lambda p, m: targets.NeuralSchedule.of({"tau": 1.0, "its": 3}), ValueError, "['its']"),
    ("schemes-unknown", lambda p, m: targets.run_schemes(None, X, X, None, schemes=["bogus"]), ValueError, "bogus"),
]


# ---------------------------------------------------------------------------------------- third round (issue 23):
# the step loop, checkpoint integrity and folders, stored results and records, the weight steps

def _steps(bad_at, field, value, n=4, weighted=True):
    """run_steps with a step that puts ``value`` into ``field`` at step ``bad_at``."""
    def step(k, s):
        x, w = s.x + 0.01, s.w
        if k + 1 == bad_at:
            x, w = (x.clone(), w) if field == "x" else (x, w.clone())
            (x.__setitem__((3, 1), value) if field == "x" else w.__setitem__(2, value))
        return trajectory.ParticleState(x, w), {"loss": 1.0}
    return trajectory.run_steps(step, trajectory.ParticleState(X, torch.full((6,), 1 / 6, dtype=torch.float64)
                                                               if weighted else None),
                                times=range(n + 1), progress=False, name="mine", blame={"w": "lr=5 (mine)"})


class _Duck:
    def __init__(self, g):
        self.g, self.calls = g, 0

    def gradient(self, x):
        self.calls += 1
        return self.g(x, self.calls)

    def value(self, x):
        return x.sum() * 0


def _corrupt(p, how):
    """A finished particle-flow checkpoint in ``p``, then corrupted: ``x`` (a byte of the positions' data),
    ``checksum`` (the stored checksum), ``nochecksum`` (the entry removed)."""
    done = _pf(p)
    path = p / trajectory.CHECKPOINT_NAME
    if how == "x":
        data = bytearray(path.read_bytes())
        i = bytes(data).find(done.positions[-1].numpy().tobytes()[:24])
        data[i + 5] ^= 0x10
        path.write_bytes(bytes(data))
    else:
        saved = torch.load(path, weights_only=True)
        saved.pop("checksum") if how == "nochecksum" else saved.update(checksum="0" * 32)
        torch.save(saved, path)
    return p


def _disk_full(p, m):
    real = torch.save

    def save(obj, f, *a, **k):
        if isinstance(obj, dict) and obj.get("step") == 2:
            raise OSError(28, "No space left on device")
        return real(obj, f, *a, **k)
    m.setattr(torch, "save", save)
    return _pf(p)


def _second_writer(p):
    flows.particle_flow(energies.InteractionEnergy(K), X, PF_CFG, progress=False, checkpoint_dir=p,
                        callback=lambda k, t, s: _pf(p))


_STORED = {}


def _stored(p, m, name, edit=None, text=None):
    """Load ``name`` from a copy of the stored results in ``p``, edited by ``edit(data)`` or replaced by ``text``."""
    if name not in _STORED:
        _STORED[name] = runtime.stored_results_path(name, producer="-").read_text()
    if text is None:
        import json
        data = json.loads(_STORED[name])
        edit(data)
        text = json.dumps(data)
    (p / name).write_text(text)
    m.setenv(runtime.RESULTS_ENV, str(p))
    return (interaction if name.startswith("interaction") else ift_exp).load_results(name)


def _record(p, m, edit=None, text=None):
    """Load the records of a folder holding one record of 02_dirac_flows, edited by ``edit(text)``."""
    m.setenv(runtime.RECORDS_ENV, str(p))
    runtime.record_results("02_dirac_flows", {"a": 1.0}, profile="book")
    path = p / "02_dirac_flows.json"
    path.write_text(edit(path.read_text()))
    return runtime.load_records("book")


def _nan_d2(d):
    d[4]["errors"]["1.2"]["d2"] = float("nan")


ROUND3 = [
    # ------------------------------------------------------------------ the step loop: every state field
    ("steps-nan-weight", lambda p, m: _steps(3, "w", float("nan")), FloatingPointError,
     "mine, step 3 (t = 3) produced non-finite weights w: 1 of 6 entries"),                          # silent before
    ("steps-inf-weight-blame", lambda p, m: _steps(1, "w", float("inf")), FloatingPointError, "lr=5 (mine)"),  # silent before
    ("steps-minus-inf-position", lambda p, m: _steps(2, "x", -float("inf"), weighted=False), FloatingPointError,
     "step 2 (t = 2) produced non-finite positions x: 1 of 12 entries (the first -inf at index (3, 1))"),
    ("steps-inf-loss", lambda p, m: trajectory.run_steps(lambda k, s: (s, {"loss": float("inf")}),
                                                         trajectory.ParticleState(X), times=range(3), progress=False),
     FloatingPointError, "non-finite loss inf"),                                                       # silent before
    ("steps-not-a-state", lambda p, m: trajectory.run_steps(lambda k, s: ((s.x, None), None),
                                                            trajectory.ParticleState(X), times=range(3),
                                                            progress=False),
     TypeError, "must return (ParticleState, metrics), got a tuple"),
    ("steps-drops-weights", lambda p, m: trajectory.run_steps(
        lambda k, s: (trajectory.ParticleState(s.x), None), trajectory.ParticleState(X, torch.full((6,), 1 / 6,
                                                                                                   dtype=torch.float64)),
        times=range(3), progress=False), ValueError, "the step dropped the weights w"),                 # raw before
    ("steps-shrinks-weights", lambda p, m: trajectory.run_steps(
        lambda k, s: (trajectory.ParticleState(s.x, s.w[:-1]), None),
        trajectory.ParticleState(X, torch.full((6,), 1 / 6, dtype=torch.float64)), times=range(3), progress=False),
     ValueError, "weights w of shape (5,), expected (6,)"),                                           # raw before
    ("pf-gradient-broadcast-column", lambda p, m: flows.particle_flow(
        _Duck(lambda x, c: torch.zeros(x.shape[0], 1, dtype=x.dtype)), X, PF_CFG, progress=False), ValueError,
     "must return a tensor of the shape of x (6, 2), got shape (6, 1)"),                              # silent before
    ("pf-gradient-broadcast-row", lambda p, m: flows.particle_flow(
        _Duck(lambda x, c: torch.zeros(x.shape[1], dtype=x.dtype)), X, PF_CFG, progress=False), ValueError,
     "got shape (2,)"),                                                                               # silent before
    ("pf-gradient-numpy", lambda p, m: flows.particle_flow(_Duck(lambda x, c: x.numpy()), X, PF_CFG, progress=False),
     ValueError, "got a ndarray of shape (6, 2)"),
    ("pf-gradient-nan-at-step-2", lambda p, m: flows.particle_flow(
        _Duck(lambda x, c: torch.full_like(x, float("nan")) if c == 2 else x), X, PF_CFG, progress=False),
     FloatingPointError, "particle_flow, step 2 (t = 0.2) produced non-finite positions x"),
    ("pf-step-overflows", lambda p, m: flows.particle_flow(
        energies.DiscrepancyEnergy(K, Y), X, flows.ParticleFlowConfig(tau=1e308, n_steps=2), progress=False),
     FloatingPointError, "most likely responsible: tau=1e+308 (the Euler step"),                      # misleading before
    ("mmd-step-overflows", lambda p, m: _wfr("mmd", X, Y, wfr.WFRConfig(n_steps=3, tau=1e300)),
     FloatingPointError, "mmd, step 2 (t = 2e+300): a non-finite or overflowing value arose in the step"),  # misleading before
    ("wfr-kl-step-overflows", lambda p, m: _wfr("wfr", X, Y, wfr.WFRConfig(n_steps=2, tau=0.1, kl_lr=1e6)),
     FloatingPointError, "kl_lr=1e+06 (the KL weight step)"),                                          # misleading before
    ("nb-iterations-0", lambda p, m: neural.NeuralBackwardConfig(iterations=0), ValueError, "iterations=0"),  # silent before
    ("nf-iterations-start-0", lambda p, m: neural.NeuralForwardConfig(iterations=5, iterations_start=0), ValueError,
     "iterations_start=0"),                                                                             # silent before
    ("schedule-iterations-0", lambda p, m: targets.NeuralSchedule(tau=0.1, iterations=0, batch_size=1), ValueError,
     "iterations=0"),                                                                                   # silent before
    ("interaction-iterations-0", lambda p, m: interaction.interaction_settings("quick", iterations=0), ValueError,
     "iterations=0"),                                                                                   # silent before
    # ------------------------------------------------------------------ checkpoints: integrity, folders, writers
    ("checkpoint-flipped-byte", lambda p, m: _pf(_corrupt(p, "x")), CheckpointError, "is corrupted"),  # silent before
    ("checkpoint-checksum-altered", lambda p, m: _pf(_corrupt(p, "checksum")), CheckpointError, "'000000"),
    ("checkpoint-checksum-removed", lambda p, m: _pf(_corrupt(p, "nochecksum")), CheckpointError,
     "lacks the entries ['checksum']"),
    ("checkpoint-file-is-a-folder", lambda p, m: (p.joinpath(trajectory.CHECKPOINT_NAME).mkdir(), _pf(p)),
     CheckpointError, "IsADirectoryError"),
    ("checkpoint-folder-is-a-file", lambda p, m: (p.joinpath("f").write_text("x"), _pf(p / "f")), CheckpointError,
     "nothing was computed"),                                                                           # raw before
    ("checkpoint-folder-under-a-file", lambda p, m: (p.joinpath("f").write_text("x"), _pf(p / "f" / "sub")),
     CheckpointError, "Not a directory"),                                                               # raw before
    ("checkpoint-disk-full", _disk_full, CheckpointError, "No space left on device"),                   # raw before
    ("checkpoint-second-writer", lambda p, m: _second_writer(p), CheckpointError,
     "is being written by another run"),                                                                # lost before
    # ------------------------------------------------------------------ stored results
    ("stored-nan", lambda p, m: _stored(p, m, "interaction_paper.json", _nan_d2), runtime.StoredDataError,
     "field [4].errors.1.2.d2: expected a finite number, got nan"),                                    # silent before
    ("stored-inf", lambda p, m: _stored(p, m, "interaction_paper.json",
                                        lambda d: d[4]["errors"]["1.2"].update(noise=float("inf"))),
     runtime.StoredDataError, "errors.1.2.noise: expected a finite number, got inf"),                 # silent before
    ("stored-missing-field", lambda p, m: _stored(p, m, "interaction_paper.json", lambda d: d[2].pop("radius")),
     runtime.StoredDataError, "field [2].radius is missing"),                                          # silent before
    ("stored-unknown-field", lambda p, m: _stored(p, m, "interaction_paper.json", lambda d: d[2].update(colour=1)),
     runtime.StoredDataError, "field [2].colour is not expected here"),                                # silent before
    ("stored-string-number", lambda p, m: _stored(p, m, "interaction_paper.json",
                                                  lambda d: d[-1].update(iterations="5000")),
     runtime.StoredDataError, "iterations: expected an integer or null, got a string"),
    ("stored-bool-int", lambda p, m: _stored(p, m, "interaction_paper.json", lambda d: d[0].update(d=True)),
     runtime.StoredDataError, "field [0].d: expected an integer, got a boolean"),                      # silent before
    ("stored-empty-list", lambda p, m: _stored(p, m, "interaction_paper.json", lambda d: d.clear()),
     runtime.StoredDataError, "holds no runs"),                                                        # silent before
    ("stored-truncated", lambda p, m: _stored(p, m, "interaction_paper.json", text='[{"scheme": "particle_flow", "d"'),
     runtime.StoredDataError, "is not valid JSON"),                                                    # raw before
    ("stored-empty-file", lambda p, m: _stored(p, m, "interaction_paper.json", text=""), runtime.StoredDataError,
     "is empty"),                                                                                       # raw before
    ("stored-not-a-list", lambda p, m: _stored(p, m, "interaction_paper.json", text="{}"), runtime.StoredDataError,
     "field (top level): expected a list, got an object"),                                             # raw before
    ("stored-radius-not-a-pair", lambda p, m: _stored(p, m, "interaction_paper.json",
                                                      lambda d: d[0]["radius"]["0.4"].append(1.0)),
     runtime.StoredDataError, "field [0].radius.0.4: expected a pair"),                                # accepted before
    ("stored-ift-nan", lambda p, m: _stored(p, m, "ift_100d_book.json", lambda d: d[7]["loss"].__setitem__(-1, 1e999)),
     runtime.StoredDataError, "field [7].loss[200]: expected a finite number, got inf"),              # silent before
    ("stored-ift-missing", lambda p, m: _stored(p, m, "ift_100d_book.json", lambda d: d[7].pop("ess")),
     runtime.StoredDataError, "field [7].ess is missing"),                                             # raw before
    ("stored-ift-lengths", lambda p, m: _stored(p, m, "ift_100d_book.json", lambda d: d[7]["loss"].pop()),
     runtime.StoredDataError, "must have one length"),                                                 # silent before
    # ------------------------------------------------------------------ chapter records
    ("record-nan", lambda p, m: (m.setenv(runtime.RECORDS_ENV, str(p)),
                                 runtime.record_results("x", {"r": float("nan")}, profile="book")), ValueError,
     "field values.r: expected a finite number, got nan"),                                             # silent before
    ("record-inf-in-list", lambda p, m: (m.setenv(runtime.RECORDS_ENV, str(p)),
                                         runtime.record_results("x", {"r": [1.0, -1e999]}, profile="book")),
     ValueError, "field values.r[1]: expected a finite number, got -inf"),                             # silent before
    ("record-tensor", lambda p, m: (m.setenv(runtime.RECORDS_ENV, str(p)),
                                    runtime.record_results("x", {"r": torch.ones(3)}, profile="book")),
     ValueError, "got a Tensor of shape (3,)"),                                                         # raw before
    ("record-truncated", lambda p, m: _record(p, m, lambda t: t[:30]), runtime.StoredDataError,
     "02_dirac_flows.json' is not valid JSON"),                                                        # raw before
    ("record-nan-by-hand", lambda p, m: _record(p, m, lambda t: t.replace("1.0", "NaN")), runtime.StoredDataError,
     "field values.a: expected a finite number, got nan"),                                             # silent before
    ("record-other-profile", lambda p, m: _record(p, m, lambda t: t.replace('"book"', '"quick"')),
     runtime.StoredDataError, "field profile is 'quick'"),                                              # accepted before
    ("record-misspelt-field", lambda p, m: _record(p, m, lambda t: t.replace('"values"', '"valuez"')),
     runtime.StoredDataError, "field values is missing"),                                               # silent before
    ("records-folder-is-a-file", lambda p, m: (m.setenv(runtime.RECORDS_ENV, str(p / "f")),
                                               p.joinpath("f").write_text("x"), runtime.load_records("book")),
     NotADirectoryError, "is a file"),                                                                  # silent before
    ("scorecard-record-lacks-a-field", lambda p, m: scorecard.scorecard_rows(
        {"02_dirac_flows": {"profile": "book", "values": {"n_particles": 5}}}, stored={}), ValueError,
     "lacks the field 'prox_radius_error_d2r1'"),                                                      # silent before
]


@pytest.mark.parametrize("call,error,text", [c[1:] for c in CASES + ROUND3], ids=[c[0] for c in CASES + ROUND3])
def test_bad_input_is_refused_with_a_message_naming_it(call, error, text, tmp_path, monkeypatch):
    monkeypatch.delenv("MMDFLOW_MEMORY_BUDGET", raising=False)
    with pytest.raises(error) as info:
        call(tmp_path, monkeypatch)
    assert text in str(info.value), f"{text!r} not in the message: {info.value}"


def test_the_matrix_is_large_enough():
    assert len(CASES) >= 80 and len(ROUND3) >= 45
    assert len({c[0] for c in CASES + ROUND3}) == len(CASES + ROUND3)


# ---------------------------------------------------------------------------------------- edge inputs that work

def test_numpy_integers_are_accepted_where_ints_are():
    assert sample_directions(2, np.int64(5)).shape == (5, 2)
    assert slicing_constant(np.int64(3)) == pytest.approx(2.0, rel=1e-13)
    assert images.image_to_samples(IMG, np.int32(7), generator=torch.Generator().manual_seed(0)).shape == (7, 2)
    assert flows.perturbed_dirac(np.int64(4), np.int64(2)).shape == (4, 2)


def test_float32_normalised_weights_cast_to_float64_are_accepted():
    a = torch.rand(1_000_000, generator=torch.Generator().manual_seed(3))
    w = (a / a.sum()).double()
    assert abs(float(w.sum()) - 1.0) > 1e-8          # beyond the float64 tolerance, as the issue reports
    assert _checks.check_weights(w, torch.zeros(w.shape[0], 1, dtype=torch.float64)) is w
    # float64 weights that are not float32 numbers keep the float64 tolerance
    w64 = torch.full((7,), 1 / 7, dtype=torch.float64)
    w64[0] += 2e-7
    with pytest.raises(ValueError, match="tolerance 1e-08"):
        _checks.check_weights(w64, Y)


def test_register_backend_replaces_only_when_asked(monkeypatch):
    from mmdflow.summation import dispatch

    monkeypatch.setattr(dispatch, "BACKENDS", dict(dispatch.BACKENDS))
    register_backend("mine", dispatch.BACKENDS["dense"][0], dispatch.BACKENDS["dense"][1])
    with pytest.raises(ValueError, match="'mine' is already registered"):
        register_backend("mine", dispatch.BACKENDS["dense"][0], dispatch.BACKENDS["dense"][1])
    register_backend("mine", dispatch.BACKENDS["blocked"][0], dispatch.BACKENDS["blocked"][1], replace=True)
    assert dispatch.BACKENDS["mine"][0] is dispatch.BACKENDS["blocked"][0]
