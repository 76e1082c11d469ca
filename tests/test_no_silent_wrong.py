"""No silent wrong results, no lost work (third round): non-finite state fields, corrupted checkpoints, stored
results and records checked against their schema, unconverged inner solvers, checkpoint folders checked, locked and
written under unique names. Each test names what happened before its fix."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import warnings

import pytest
import torch

from mmdflow import energies, flows, runtime, trajectory, wfr
from mmdflow.experiments import ift, interaction, scorecard
from mmdflow.kernels import Gaussian, Riesz
from mmdflow.runtime import StoredDataError
from mmdflow.simplex import project_simplex
from mmdflow.trajectory import CHECKPOINT_NAME, LOCK_NAME, CheckpointError, ParticleState

G = torch.Generator().manual_seed(0)
X0 = torch.randn(20, 2, generator=G, dtype=torch.float64)
Y = torch.randn(30, 2, generator=G, dtype=torch.float64) + 1.0
CFG = flows.ParticleFlowConfig(tau=0.1, n_steps=3)
E = energies.InteractionEnergy(Riesz(1.0))


def _wfr(method, sigma, **cfg):
    """wfr.wfr_flow of ``method`` from X0 for the Gaussian discrepancy (bandwidth ``sigma``) against Y."""
    energy = energies.DiscrepancyEnergy(Gaussian(sigma), Y)
    return wfr.wfr_flow(energy, X0, wfr.WFRConfig(method=method, **cfg), progress=False)


def _pf(folder, **kw):
    return flows.particle_flow(E, X0, CFG, progress=False, checkpoint_dir=folder, **kw)


# ------------------------------------------------------------------------------------ item 5: every state field

def test_non_finite_weights_stop_the_run_naming_the_step_the_scheme_and_the_parameter(monkeypatch):
    # before: run_steps checked the positions only, and a weight step that returned NaN weights ended the run with
    # NaN weights and a NaN loss, without an error
    def nan_weights(x, w, y, kernel, lr, **kw):
        return torch.full_like(w, float("nan"))

    monkeypatch.setattr(wfr, "kl_weight_step", nan_weights)
    with pytest.raises(FloatingPointError) as info:
        _wfr("wfr", 1.0, n_steps=1, tau=0.1, kl_lr=3.0)
    msg = str(info.value)
    assert "wfr, step 1 (t = 0.1) produced non-finite weights w: 20 of 20 entries" in msg and "kl_lr=3" in msg


def test_the_kl_weight_step_is_exact_where_every_exponential_underflows():
    # before: with kl_lr = 1e6 every w_i exp(lr g_i) underflowed to 0 and "renormalise" returned 0/0 = NaN weights
    # and a NaN loss from the weighted-particle runner, without an error
    traj = _wfr("wfr", 0.1, n_steps=1, tau=0.0, kl_lr=1e6, kl_normalise="renormalise")
    K, b = wfr.kernel_matrix(X0, X0, Gaussian(0.1)), wfr.kernel_matrix(X0, Y, Gaussian(0.1)).mean(1)
    w0 = torch.full((20,), 1 / 20, dtype=torch.float64)
    expected = torch.softmax(torch.log(w0) + 1e6 * (b - K @ w0), dim=0)      # the step in the log domain
    assert torch.allclose(traj.weights[-1], expected, rtol=0, atol=1e-15) and math.isfinite(traj.info["loss"][-1])


def test_an_overflowing_kl_step_names_the_learning_rate():
    # before: "v contains a non-finite value" (the simplex projection), naming neither the step nor kl_lr
    with pytest.raises(FloatingPointError) as info:
        _wfr("wfr", 1.0, n_steps=2, tau=0.1, kl_lr=1e6)
    msg = str(info.value)
    assert "wfr, step 1" in msg and "kl_lr=1e+06 (the KL weight step)" in msg and "v contains" in msg


def test_an_overflow_inside_a_step_names_the_step_and_the_step_size():
    # before: "x has entries as large as ...; rescale the points or use float64" (in float64), no step, no tau
    with pytest.raises(FloatingPointError) as info:
        _wfr("mmd", 1.0, n_steps=5, tau=1e300)
    msg = str(info.value)
    assert "mmd, step 2" in msg and "tau=1e+300 (the position step)" in msg and "overflow" in msg


def test_non_finite_positions_name_the_particle_flow_step_size():
    class Exploding:
        def gradient(self, x):
            return torch.full_like(x, float("inf")) if float(x.abs().max()) > 2 else x

        def value(self, x):
            return x.sum() * 0

    with pytest.raises(FloatingPointError, match=r"particle_flow, step 1 \(t = 10\) produced non-finite positions x: "
                                                 r"40 of 40 entries.*tau=10"):
        flows.particle_flow(Exploding(), X0 * 10, flows.ParticleFlowConfig(tau=10.0, n_steps=2), progress=False)


def test_a_step_that_changes_the_shape_of_the_state_is_refused():
    step = lambda k, s: (ParticleState(s.x[:-1], s.w), None)        # noqa: E731
    with pytest.raises(ValueError, match=r"mine, step 1 .*positions x of shape \(19, 2\), expected \(20, 2\)"):
        trajectory.run_steps(step, ParticleState(X0), times=[0.0, 1.0], progress=False, name="mine")


def test_a_duck_typed_gradient_of_the_wrong_shape_is_refused():
    # before: x - tau * g broadcast a (1, d) or (N, 1) gradient silently
    for shape in ((1, 2), (20, 1), (2,)):
        class Duck:
            def gradient(self, x, shape=shape):
                return torch.zeros(shape, dtype=x.dtype)

            def value(self, x):
                return x.sum() * 0

        with pytest.raises(ValueError) as info:
            flows.particle_flow(Duck(), X0, CFG, progress=False)
        assert f"Duck.gradient(x) must return a tensor of the shape of x (20, 2), got shape {tuple(shape)!r}" in str(
            info.value)
        assert "step 1" in "".join(getattr(info.value, "__notes__", []))


# ------------------------------------------------------------------------------------ item 6: checkpoint checksum

def _flip_in_tensor_data(path, tensor: torch.Tensor):
    data = bytearray(path.read_bytes())
    i = bytes(data).find(tensor.numpy().tobytes()[:24])
    assert i > 0, "the tensor's bytes are stored as is"
    data[i + 5] ^= 0x10
    path.write_bytes(bytes(data))


def test_a_flipped_byte_in_the_tensor_data_of_a_checkpoint_is_refused(tmp_path):
    # before: the corrupted checkpoint resumed as valid and gave other particles
    done = _pf(tmp_path)
    _flip_in_tensor_data(tmp_path / CHECKPOINT_NAME, done.positions[-1])
    with pytest.raises(CheckpointError) as info:
        _pf(tmp_path)
    msg = str(info.value)
    assert str(tmp_path / CHECKPOINT_NAME) in msg and "corrupted" in msg and "delete" in msg


def test_an_intact_checkpoint_resumes_and_a_legacy_one_warns(tmp_path):
    done = _pf(tmp_path)
    assert torch.equal(_pf(tmp_path).positions, done.positions)
    saved = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    del saved["checksum"]
    saved["format"] = "mmdflow-checkpoint-2"
    torch.save(saved, tmp_path / CHECKPOINT_NAME)
    with pytest.warns(UserWarning, match="cannot be verified"):
        assert torch.equal(_pf(tmp_path).positions, done.positions)


# ------------------------------------------------------------------------------------ lost work: checkpoint folders

def test_an_unwritable_checkpoint_folder_is_refused_before_the_first_step(tmp_path):
    calls = []
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for folder in (blocker, blocker / "sub"):
        with pytest.raises(CheckpointError) as info:
            trajectory.run_steps(lambda k, s: (calls.append(k), (s, None))[1], ParticleState(X0), times=[0, 1, 2],
                                 checkpoint=trajectory.Checkpoint(folder, {"a": 1}), progress=False)
        assert str(folder) in str(info.value) and "nothing was computed" in str(info.value)
    assert calls == []


def test_a_failed_checkpoint_write_names_the_folder_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    # before: a raw torch error naming neither the folder nor the cause, and a temporary file left behind
    real_save = torch.save

    def full_disk(obj, f, *a, **k):
        if obj.get("step") == 2:
            raise OSError(28, "No space left on device")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(CheckpointError) as info:
        _pf(tmp_path)
    msg = str(info.value)
    assert "after step 2" in msg and str(tmp_path) in msg and "No space left on device" in msg
    assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_NAME, CHECKPOINT_NAME]
    assert int(torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)["step"]) == 1
    monkeypatch.setattr(torch, "save", real_save)
    assert torch.equal(_pf(tmp_path).positions, _pf(None).positions)     # resumes from step 1


def test_a_second_writer_of_one_checkpoint_folder_is_refused(tmp_path):
    # before: two processes shared one temporary name and one of them died
    nested = []

    def callback(k, t, state):
        if k == 1:
            with pytest.raises(CheckpointError, match="being written by another run"):
                _pf(tmp_path)
            nested.append(k)

    _pf(tmp_path, callback=callback)
    assert nested == [1]
    # another process holding the lock
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time\n"
                               f"fd = os.open({str(tmp_path / LOCK_NAME)!r}, os.O_RDWR | os.O_CREAT)\n"
                               "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(30)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(CheckpointError, match="being written by another run"):
            _pf(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    _pf(tmp_path)    # released with its process


def test_stale_temporary_files_of_a_killed_writer_are_removed_and_names_are_unique(tmp_path, monkeypatch):
    stale = tmp_path / f".{CHECKPOINT_NAME}.abc123.tmp"
    tmp_path.mkdir(exist_ok=True)
    stale.write_bytes(b"half a checkpoint")
    names = []
    real = trajectory.tempfile.mkstemp

    def spy(*a, **k):
        fd, name = real(*a, **k)
        names.append(os.path.basename(name))
        return fd, name

    monkeypatch.setattr(trajectory.tempfile, "mkstemp", spy)
    _pf(tmp_path)
    assert not stale.exists()
    tmp_names = [n for n in names if n.endswith(".tmp")]
    assert len(tmp_names) == 3 and len(set(tmp_names)) == 3
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# ------------------------------------------------------------------------------------ item 7: stored results, records

def _results_dir(tmp_path, monkeypatch, name, edit):
    src = runtime.stored_results_path(name, producer="-")
    data = json.loads(src.read_text())
    edit(data)
    (tmp_path / name).write_text(json.dumps(data))
    monkeypatch.setenv(runtime.RESULTS_ENV, str(tmp_path))
    return tmp_path / name


def test_a_nan_in_the_stored_interaction_results_is_refused_naming_the_file_and_the_field(tmp_path, monkeypatch):
    # before: max() skipped the NaN ratio (max(nan, 5.0) = nan, max(5.0, nan) = 5.0) and the verdict stood
    path = _results_dir(tmp_path, monkeypatch, "interaction_paper.json",
                        lambda d: d[0]["errors"]["0.8"].update(d2=float("nan")))
    with pytest.raises(StoredDataError) as info:
        interaction.load_results()
    assert str(path) in str(info.value) and "field [0].errors.0.8.d2: expected a finite number, got nan" in str(
        info.value)
    with pytest.raises(StoredDataError):
        scorecard.scorecard_rows({})


def test_a_missing_field_of_the_stored_results_is_refused_not_filled(tmp_path, monkeypatch):
    # before: a missing jko_errors became {} and the claim fell back to the gamma(t) errors
    path = _results_dir(tmp_path, monkeypatch, "interaction_paper.json", lambda d: d[3].pop("jko_errors"))
    with pytest.raises(StoredDataError, match=r"field \[3\]\.jko_errors is missing") as info:
        interaction.load_results()
    assert str(path) in str(info.value)
    _results_dir(tmp_path, monkeypatch, "interaction_paper.json", lambda d: d[1].update(d="2"))
    with pytest.raises(StoredDataError, match=r"field \[1\]\.d: expected an integer, got a string"):
        interaction.load_results()


def test_a_nan_in_the_stored_ift_results_is_refused(tmp_path, monkeypatch):
    # before: a NaN final loss compared False with every other and flipped chapter 6's ordering verdict
    _results_dir(tmp_path, monkeypatch, "ift_100d_book.json", lambda d: d[5]["loss"].__setitem__(-1, float("nan")))
    with pytest.raises(StoredDataError, match=r"ift_100d_book.json'?: field \[5\]\.loss\[\d+\]: expected a finite"):
        ift.load_results()


@pytest.mark.parametrize("text,message", [
    ("", "is empty"),
    ('[{"scheme": "particle_flow", "d": 2', "is not valid JSON (Expecting"),
    ("{not json}", "is not valid JSON"),
    ('{"scheme": "particle_flow"}', "field (top level): expected a list, got an object"),
    ('[{"scheme": 3}]', "field [0].d is missing (also missing: r, iterations"),
])
def test_truncated_or_malformed_stored_results_name_the_file(tmp_path, monkeypatch, text, message):
    (tmp_path / "interaction_paper.json").write_text(text)
    monkeypatch.setenv(runtime.RESULTS_ENV, str(tmp_path))
    with pytest.raises(StoredDataError) as info:
        interaction.load_results()
    assert str(tmp_path / "interaction_paper.json") in str(info.value) and message in str(info.value)


def test_records_with_nan_are_refused_when_written_and_when_loaded(tmp_path, monkeypatch):
    # before: record_results wrote NaN, and the scorecard's comparisons turned it into a verdict
    monkeypatch.setenv(runtime.RECORDS_ENV, str(tmp_path))
    with pytest.raises(ValueError, match=r"'02_dirac_flows' cannot be stored: field values\.key_floor_ratio: "
                                         r"expected a finite number, got nan"):
        runtime.record_results("02_dirac_flows", {"key_floor_ratio": math.nan}, profile="book")
    assert list(tmp_path.iterdir()) == []
    runtime.record_results("02_dirac_flows", {"prox_radius_error_d2r1": 0.0, "key_floor_ratio": 1.0,
                                              "n_particles": 5}, profile="book")
    path = tmp_path / "02_dirac_flows.json"
    rec = json.loads(path.read_text())
    rec["values"]["key_floor_ratio"] = math.nan
    path.write_text(json.dumps(rec))
    with pytest.raises(StoredDataError) as info:
        runtime.load_records("book")
    assert str(path) in str(info.value) and "values.key_floor_ratio" in str(info.value)


@pytest.mark.parametrize("edit,message", [
    (lambda r: r.pop("values"), "field values is missing"),
    (lambda r: r.update(profile="quick"), "field profile is 'quick'"),
    (lambda r: r.update(chapter="01_kernels_mmd"), "field chapter is '01_kernels_mmd'"),
    (lambda r: r.update(extra=1), "field extra is not expected"),
    (None, "is not valid JSON"),
])
def test_malformed_records_name_the_file_and_the_field(tmp_path, monkeypatch, edit, message):
    monkeypatch.setenv(runtime.RECORDS_ENV, str(tmp_path))
    runtime.record_results("02_dirac_flows", {"a": 1.0}, profile="book")
    path = tmp_path / "02_dirac_flows.json"
    if edit is None:
        path.write_text(path.read_text()[:40])
    else:
        rec = json.loads(path.read_text())
        edit(rec)
        path.write_text(json.dumps(rec))
    with pytest.raises(StoredDataError) as info:
        runtime.load_records("book")
    assert str(path) in str(info.value) and message in str(info.value)


def test_a_record_that_lacks_a_field_is_an_error_in_the_scorecard_not_a_silent_not_run():
    # before: the KeyError of the missing field gave the verdict "not run" ("no record of key_floor_ratio")
    records = {"02_dirac_flows": {"chapter": "02_dirac_flows", "profile": "book", "provenance": {},
                                  "values": {"prox_radius_error_d2r1": 0.0, "n_particles": 5}}}
    with pytest.raises(ValueError, match="lacks the field 'key_floor_ratio'"):
        scorecard.scorecard_rows(records, stored={})
    rows = scorecard.scorecard_rows({}, stored={})            # no record at all: "not tested here", naming it
    assert {r.verdict for r in rows} == {scorecard.NOT_TESTED}


# ------------------------------------------------------------------------------------ item 9: inner solvers

def test_an_unconverged_weight_qp_is_reported_and_warned():
    # before: the weighted-particle runner ended without a word; only info["qp_gap_max"] held a large gap
    with pytest.warns(RuntimeWarning, match=r"qp_max_iter=1 iterations in 3 of 3 steps"):
        traj = _wfr("ift", 1.0, n_steps=3, tau=0.1, qp_max_iter=1)
    assert traj.info["qp_unconverged_steps"] == [1, 2, 3]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        traj = _wfr("ift", 1.0, n_steps=3, tau=0.1)
    assert traj.info["qp_unconverged_steps"] == []


def test_the_simplex_projection_of_huge_entries_is_exact():
    # before: IndexError (index -1 is out of bounds) from a huge projected-gradient step
    for v, expected in (([1e300, 5e299, -1e308, 3.0], [1.0, 0, 0, 0]), ([1e308, 1e308, 0.0], [0.5, 0.5, 0]),
                        ([1e8 + 0.5, 1e8, 1e8 - 3], [0.75, 0.25, 0.0])):
        assert torch.equal(project_simplex(torch.tensor(v, dtype=torch.float64)),
                           torch.tensor(expected, dtype=torch.float64))
    small = torch.randn(4, 50, generator=G, dtype=torch.float64)
    shifted = project_simplex(small * 1e4)       # the shifted path against the plain one at a scale both handle
    assert torch.allclose(shifted, project_simplex(small * 1e4 - (small * 1e4).amax(-1, keepdim=True)), atol=1e-15)
