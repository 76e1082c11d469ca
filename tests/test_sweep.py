"""The sweep runner on real Dask processes (loopback only): bitwise the serial results, nothing lost, nothing twice.

The references are the experiments' own functions called directly in this process (``run_interaction_case``,
``run_hd``, ``run_seeds``), not the runner's serial path. The clusters are a ``LocalCluster`` of two single-threaded
worker processes, and a ``dask scheduler`` with two ``dask worker`` processes started from the command line on
random free ports of 127.0.0.1, one of which is killed in the middle of a run. Everything started is stopped at the
end, also when a test fails.
"""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
import types
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import mmdflow
from mmdflow import wfr
from mmdflow.data import mixtures
from mmdflow.experiments import ift, interaction, run_seeds, sweep
from mmdflow.kernels import Gaussian
from mmdflow.trajectory import CHECKPOINT_NAME, digest

distributed = pytest.importorskip("distributed")

TINY = dict(n_particles=60, iterations=15, tau=0.4, n_steps=3, pf_tau=0.02)   # snapshots at 0.4, 0.8, 1.2


def _threads1(fn, *args, **kwargs):
    """Run ``fn`` with one torch thread, as every task does."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn(*args, **kwargs)
    finally:
        torch.set_num_threads(before)


def _interaction_reference(spec: sweep.InteractionRun) -> dict:
    res = _threads1(interaction.run_interaction_case, spec.scheme, spec.d, spec.r, spec.settings, seed=spec.seed,
                    n_repeats=spec.n_repeats, device="cpu")
    return sweep.science(res.to_json())


def _ift_reference(spec: sweep.IFTRun) -> dict:
    return sweep.science(_threads1(ift.run_hd, spec.label, spec.n, spec.seed, spec.n_steps, device="cpu").to_json())


def _stop(procs) -> None:
    """SIGTERM each process group, then SIGKILL what is still alive."""
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for p in procs:
        try:
            p.wait(timeout=3)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=10)


@pytest.fixture(scope="module")
def local_client():
    """A LocalCluster(n_workers=2, threads_per_worker=1) on 127.0.0.1 and its client."""
    cluster = client = None
    try:
        cluster = sweep.local_cluster(2, gpus=0)
        assert all(w.nthreads == 1 for w in cluster.workers.values()) and len(cluster.workers) == 2
        client = distributed.Client(cluster)
        client.wait_for_workers(2, timeout=120)
        yield client
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


@pytest.fixture
def cli_cluster(tmp_path):
    """``dask scheduler`` and two ``dask worker`` processes (no nanny, one thread, resource GPU=1 and their own
    CUDA_VISIBLE_DEVICES each) on random free ports of 127.0.0.1; yields (address, {name: process})."""
    dask_cli = str(Path(sys.executable).parent / "dask")
    lib = str(Path(mmdflow.__file__).resolve().parents[1])
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([lib] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    procs = []
    logs = []

    def start(args, name, extra_env=None):
        log = open(tmp_path / f"{name}.log", "w")
        logs.append(log)
        p = subprocess.Popen([dask_cli, *args], env=dict(env, **(extra_env or {})), stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(p)
        return p

    try:
        sfile = tmp_path / "scheduler.json"
        start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address", "127.0.0.1:0",
               "--scheduler-file", str(sfile)], "scheduler")
        t0 = time.monotonic()
        while not (sfile.exists() and sfile.stat().st_size > 0):
            if time.monotonic() - t0 > 90 or procs[0].poll() is not None:
                raise RuntimeError(f"dask scheduler did not start: {(tmp_path / 'scheduler.log').read_text()}")
            time.sleep(0.1)
        address = json.loads(sfile.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        workers = {}
        for i in range(2):
            workers[f"w{i}"] = start(["worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny",
                                      "--no-dashboard", "--name", f"w{i}", "--resources", "GPU=1",
                                      "--death-timeout", "60"], f"w{i}", {"CUDA_VISIBLE_DEVICES": str(i)})
        yield address, workers
    finally:
        _stop(procs)
        for log in logs:
            log.close()


# ----------------------------------------------------------------------------------------------
def test_local_cluster_gives_bitwise_the_serial_results(local_client, tmp_path):
    runs = (sweep.interaction_runs("quick", cases=[(2, 1.0)], n_repeats=2, **TINY)
            + sweep.interaction_runs("quick", cases=[(3, 1.5)], schemes=["particle_flow", "neural_backward"], n_repeats=2,
                                     **TINY))
    store = tmp_path / "interaction.json"
    got = sweep.run_sweep(runs, store=store, checkpoint_root=tmp_path / "runs", client=local_client, progress=False)
    stored = sweep.read_store(store)
    ids = [sweep.InteractionRun.identity_of(r) for r in stored]        # in the order the runs finished
    assert sorted(ids) == sorted(s.identity for s in runs) and len(set(ids)) == len(runs)   # each run once
    assert got == [stored[ids.index(s.identity)] for s in runs]
    workers = {r["provenance"]["worker"] for r in got}
    assert workers <= set(local_client.scheduler_info()["workers"]) and "serial" not in workers
    for spec, rec in zip(runs, got):
        assert sweep.science(rec) == _interaction_reference(spec), spec.name
        assert rec["provenance"]["run_key"] == spec.key and rec["provenance"]["attempts"] == 1
    assert not any((tmp_path / "runs").iterdir())            # run folders removed once stored

    hd = sweep.ift_runs({20: [0, 1]}, 4, {20: [ift.MMD_FLOW, ift.IFT_PURE]})
    got = sweep.run_ift_sweep({20: [0, 1]}, 4, {20: [ift.MMD_FLOW, ift.IFT_PURE]}, out=tmp_path / "ift.json",
                              checkpoint_root=tmp_path / "runs", client=local_client, progress=False)
    assert [r.key for r in got] == [s.identity for s in hd]
    for spec, run in zip(hd, got):
        assert sweep.science(run.to_json()) == _ift_reference(spec), spec.name

    schemes = ift.hd_schemes(20, 5, labels=[ift.MMD_FLOW, ift.WFR_GD])
    target = mixtures.gaussian_2d()
    kw = dict(kernel=Gaussian(ift.HD_SIGMA), n_test=30, center=(1.0, 1.0), sigma_alt=1.0)
    swept = sweep.run_seed_sweep(schemes, target, [3, 5], 12, checkpoint_root=tmp_path / "runs",
                                 client=local_client, progress=False, **kw)
    ref = _threads1(run_seeds, schemes, target, [3, 5], 12, **kw)
    for label in schemes:
        a, b = swept[label], ref[label]
        for name in ("steps", "loss", "ess", "zero_fraction", "energy_distance", "mmd2_alt"):
            assert torch.equal(getattr(a, name), getattr(b, name)), (label, name)
        assert torch.equal(a.first.positions, b.first.positions) and torch.equal(a.first.weights, b.first.weights)
        assert torch.equal(a.held_out, b.held_out)


def test_cluster_from_the_command_line_survives_a_killed_worker(cli_cluster, tmp_path):
    address, workers = cli_cluster
    long = sweep.interaction_runs("quick", cases=[(2, 1.0)], schemes=["particle_flow"], n_repeats=2,
                                  **{**TINY, "n_particles": 100, "pf_tau": 0.001})      # 1200 checkpointed steps
    short = (sweep.interaction_runs("quick", cases=[(2, 1.0)], schemes=["neural_backward", "neural_forward"], n_repeats=2, **TINY)
             + sweep.interaction_runs("quick", cases=[(2, 0.5), (3, 1.0)], schemes=["particle_flow"], n_repeats=2,
                                      **TINY))
    runs = long + short
    store, root = tmp_path / "store.json", tmp_path / "runs"
    done, errors = [], []
    with distributed.Client(address, timeout="60s") as client:
        client.wait_for_workers(2, timeout=120)
        names = {addr: w["name"] for addr, w in client.scheduler_info()["workers"].items()}

        def go():
            try:
                done.append(sweep.run_sweep(runs, store=store, checkpoint_root=root, client=client, device="cpu",
                                            progress=False))
            except BaseException as e:  # noqa: BLE001 - re-raised in the test's thread
                errors.append(e)

        thread = threading.Thread(target=go, daemon=True)
        thread.start()
        folder = root / long[0].key
        t0, step = time.monotonic(), 0
        while step < 100:                                    # wait until the long run is well under way
            assert time.monotonic() - t0 < 120 and thread.is_alive(), f"the long run did not start: {errors}"
            if (folder / "flow" / CHECKPOINT_NAME).exists():
                try:
                    step = int(torch.load(folder / "flow" / CHECKPOINT_NAME, weights_only=False)["step"])
                except Exception:  # noqa: BLE001 - replaced while being read: try again
                    pass
            time.sleep(0.05)
        victim = (folder / "attempts.log").read_text().split()[0]
        os.killpg(workers[names[victim]].pid, signal.SIGKILL)
        thread.join(timeout=240)
        assert not thread.is_alive(), "the sweep did not finish after the kill"
    assert not errors, errors
    stored = sweep.read_store(store)
    assert sorted(sweep.InteractionRun.identity_of(r) for r in stored) == sorted(s.identity for s in runs)
    assert len(stored) == len(runs)                          # every run once
    by_key = {r["provenance"]["run_key"]: r for r in stored}
    again = by_key[long[0].key]["provenance"]
    assert again["attempts"] == 2 and again["resumed_from_step"] >= 100 and again["worker"] != victim
    assert {r["provenance"]["cuda_visible_devices"] for r in stored} <= {"0", "1"}   # only on GPU=1 workers
    for spec in runs:
        assert sweep.science(by_key[spec.key]) == _interaction_reference(spec), spec.name


def test_local_cluster_with_a_worker_per_gpu_sets_each_device():
    """The GPU layout on any machine: one worker per (here: pretended) GPU, its own CUDA_VISIBLE_DEVICES, GPU=1."""
    with sweep.local_cluster(gpus=2) as cluster, distributed.Client(cluster) as client:
        client.wait_for_workers(2, timeout=120)
        seen = client.run(lambda: os.environ.get("CUDA_VISIBLE_DEVICES"))    # read in each worker process
        assert sorted(seen.values()) == ["0", "1"]
        assert all(w["resources"] == {"GPU": 1} for w in client.scheduler_info()["workers"].values())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU on this machine")
def test_gpu_workers_run_on_their_device(tmp_path):
    runs = sweep.interaction_runs("quick", cases=[(2, 1.0)], schemes=["particle_flow", "neural_backward"], n_repeats=2, **TINY)
    got = sweep.run_sweep(runs, checkpoint_root=tmp_path / "runs", scheduler="local", progress=False)
    n = torch.cuda.device_count()
    assert {r["provenance"]["device"] for r in got} == {"cuda"}
    assert {r["provenance"]["cuda_visible_devices"] for r in got} <= {str(i) for i in range(n)}


# ----------------------------------------------------------------------------------------------
# the client's bookkeeping (in this process: scheduler "serial")
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class _Boom(sweep.RunSpec):
    kind = "boom"
    storable = False
    tag: int

    @property
    def name(self):
        return f"boom{self.tag}"

    @property
    def identity(self):
        return (self.tag,)

    def execute(self, folder, device):
        raise FloatingPointError(f"run {self.tag} diverged")


def test_store_skips_finished_runs_and_recovers_unstored_ones(tmp_path):
    runs = sweep.interaction_runs("quick", cases=[(2, 1.0), (2, 1.5)], schemes=["particle_flow"], n_repeats=2, **TINY)
    store, root = tmp_path / "s.json", tmp_path / "runs"
    first = sweep.execute_run(runs[0], str(root))            # a task that finished but was never stored
    lines = []
    got = sweep.run_sweep(runs, store=store, checkpoint_root=root, scheduler="serial", progress=False, log=lines.append)
    assert "1 recovered from checkpoints, 1 to run" in lines[0]
    assert got[0] == {**first, "provenance": {**first["provenance"], "scheduler": "serial"}}
    assert [sweep.science(g) for g in got] == [_interaction_reference(s) for s in runs]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs", "s.json"] and not any(root.iterdir())
    before = store.stat().st_mtime_ns
    lines.clear()
    again = sweep.run_sweep(runs, store=store, checkpoint_root=root, scheduler="serial", progress=False,
                            log=lines.append)
    assert "2 stored, 0 recovered from checkpoints, 0 to run" in lines[0]
    assert again == got and store.stat().st_mtime_ns == before


def test_failed_runs_are_named_and_the_others_kept(tmp_path):
    good = sweep.interaction_runs("quick", cases=[(2, 1.0)], schemes=["particle_flow"], n_repeats=2, **TINY)[0]
    other = sweep.InteractionRun(**{**good.__dict__, "seed": 1})
    root = tmp_path / "runs"
    with pytest.raises(sweep.SweepError, match=r"1 of 3 runs failed[\s\S]*boom7[\s\S]*FloatingPointError: run 7"):
        sweep.run_sweep([_Boom(tag=7), good, other], checkpoint_root=root, scheduler="serial", progress=False)
    assert all((root / s.key / sweep.RESULT_NAME).exists() for s in (good, other))   # the good runs wait there
    lines = []
    got = sweep.run_sweep([good, other], checkpoint_root=root, scheduler="serial", progress=False, log=lines.append)
    assert "2 recovered from checkpoints, 0 to run" in lines[0] and got[0]["seed"] == 0 and got[1]["seed"] == 1


def test_bad_sweeps_and_schedulers_are_refused(tmp_path, monkeypatch):
    run = sweep.interaction_runs("quick", cases=[(2, 1.0)], schemes=["particle_flow"], n_repeats=2, **TINY)[0]
    with pytest.raises(ValueError, match="more than once"):
        sweep.run_sweep([run, run], scheduler="serial", checkpoint_root=tmp_path)
    hd = sweep.IFTRun(label=ift.MMD_FLOW, n=20, seed=0, n_steps=4)
    with pytest.raises(ValueError, match="one storable kind"):
        sweep.run_sweep([run, hd], store=tmp_path / "x.json", scheduler="serial", checkpoint_root=tmp_path)
    monkeypatch.delenv(sweep.SWEEP_DIR_ENV, raising=False)
    with pytest.raises(ValueError, match="checkpoint_root"):                 # refused before connecting
        sweep.run_sweep([run], scheduler="tcp://10.1.2.3:8786")
    monkeypatch.setenv(sweep.SCHEDULER_ENV, "tcp://127.0.0.1:8786")
    assert sweep.resolve_scheduler() == "tcp://127.0.0.1:8786" and sweep.resolve_scheduler("serial") == "serial"
    monkeypatch.setenv(sweep.SCHEDULER_ENV, "")
    assert sweep.resolve_scheduler() == "local"
    monkeypatch.setenv(sweep.SCHEDULER_ENV, "head:8786")
    with pytest.raises(ValueError, match="head:8786"):
        sweep.resolve_scheduler()
    with pytest.raises(ValueError, match="forward"):
        sweep.InteractionRun(scheme="neural_forward", d=2, r=1.5, settings=run.settings)
    with pytest.raises(ValueError, match="label"):
        sweep.IFTRun(label="IFT", n=20, seed=0, n_steps=4)


def test_run_keys_follow_the_fingerprint_of_the_run():
    a, b = sweep.interaction_runs("quick", cases=[(2, 1.0)], schemes=["particle_flow"], pf_taus=[0.02, 0.01], **TINY)
    assert a.key != b.key and a.identity != b.identity and a.key.startswith("interaction-particle_flow_d2_r1_m60_tau0.02")
    same = sweep.interaction_runs("quick", cases=[(2, 1.0)], schemes=["particle_flow"], pf_taus=[0.02], **TINY)[0]
    assert same.key == a.key
    assert sweep.InteractionRun(**{**a.__dict__, "n_repeats": 4}).key != a.key


def test_seed_run_holds_one_config_and_keeps_the_run_folders_of_the_pairs():
    """A :class:`SeedRun` holds the scheme as one ``WFRConfig(method=...)``; its key (the run folder) is the digest
    of the former layout, the fields ``method`` and ``config`` (without method) apart, so old run folders resume."""
    # the former field layout, by name (the digest includes the type's name)
    old_fields = ("label", "method", "config", "kernel", "target", "seed", "n_particles", "n_test", "center", "scale",
                  "dtype", "sigma_alt", "keep_trajectory")
    OldSeedRun = dataclasses.make_dataclass("SeedRun", old_fields, frozen=True)

    target, kernel = mixtures.mixture_2d(), Gaussian(ift.HD_SIGMA)
    specs = sweep.seed_runs(ift.hd_schemes(20, 5), target, [3, 5], 12, kernel=kernel, n_test=30, sigma_alt=1.0)
    assert len(specs) == 2 * len(ift.HD_LABELS)
    for s in specs:
        old = OldSeedRun(label=s.label, method=s.config.method, config=dataclasses.replace(s.config, method=None),
                         kernel=kernel, target=target, seed=s.seed, n_particles=12, n_test=30, center=(5.0, 5.0),
                         scale=1.0, dtype=torch.float64, sigma_alt=1.0, keep_trajectory=s.keep_trajectory)
        assert s.key == f"seeds-{s.name}-{digest(old)}" and s.identity == (s.key,) and s.cost == 1.0
    assert specs[0].name == "MMD_flow_s3_N12" and not hasattr(specs[0], "method")
    with pytest.raises(ValueError, match="'MMD flow'.*names no method"):
        sweep.SeedRun(label="MMD flow", config=wfr.WFRConfig(n_steps=1, tau=1.0), kernel=kernel, target=target,
                      seed=0, n_particles=4)
    with pytest.raises(TypeError, match="'MMD flow'.*WFRConfig.*tuple"):
        sweep.SeedRun(label="MMD flow", config=("mmd", wfr.WFRConfig(method="mmd", n_steps=1, tau=1.0)),
                      kernel=kernel, target=target, seed=0, n_particles=4)


def test_folders_follow_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(sweep.SWEEP_DIR_ENV, str(tmp_path / "shared"))
    assert sweep.sweep_dir() == tmp_path / "shared"
    assert sweep.store_path("interaction_paper.json") == tmp_path / "shared" / "interaction_paper.json"
    monkeypatch.delenv(sweep.SWEEP_DIR_ENV)
    monkeypatch.chdir(tmp_path)                               # outside a checkout: the temporary folder
    assert sweep.sweep_dir().name == "mmdflow-sweeps"
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "_toc.yml").write_text("root: intro\n")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")                 # a chapter runs in notebooks/: build/sweeps of the checkout
    assert sweep.sweep_dir() == tmp_path / "build" / "sweeps"
    sweep.write_store(tmp_path / "x" / "s.json", [{"a": 1}])
    assert sweep.read_store(tmp_path / "x" / "s.json") == [{"a": 1}] and sweep.read_store(tmp_path / "none.json") == []
    assert os.listdir(tmp_path / "x") == ["s.json"]           # the temporary file was renamed, nothing left over
    (tmp_path / "x" / "bad.json").write_text('{"a": 1}')
    with pytest.raises(ValueError, match="JSON list"):
        sweep.read_store(tmp_path / "x" / "bad.json")


def test_the_costliest_runs_are_submitted_first(tmp_path):
    """A sweep hands its runs to the cluster in decreasing cost (a long run submitted last would keep one worker busy
    while the others idle). The cost is the run's kernel-pair count; its ranking follows the measured run times of
    the quick Sec. 6.1 sweep (particle flow at d = 10 about 10 s, at d = 2 about 2 s, a neural run under 1 s)."""
    runs = sweep.interaction_runs("quick", cases=[(2, 1.0), (10, 1.0)])
    cost = {(s.scheme, s.d): s.cost for s in runs}
    assert cost["particle_flow", 10] > cost["particle_flow", 2] > cost["neural_forward", 2]
    assert cost["particle_flow", 2] > cost["neural_backward", 10]

    class AllSubmitted(Exception):
        pass

    class Recorder:                 # the client interface run_sweep uses, recording what is submitted
        def __init__(self):
            self.submitted = []

        def scheduler_info(self):
            return {"workers": {}}

        def submit(self, fn, spec, *args, key, priority, **kw):
            self.submitted.append((spec, priority))
            if len(self.submitted) == len(runs):
                raise AllSubmitted
            return types.SimpleNamespace(key=key)

    client = Recorder()
    with pytest.raises(AllSubmitted):
        sweep.run_sweep(runs, checkpoint_root=tmp_path, client=client, progress=False)
    costs = [s.cost for s, _ in client.submitted]
    assert costs == sorted(costs, reverse=True) and len(costs) == len(runs)
    assert [p for _, p in client.submitted] == sorted((p for _, p in client.submitted), reverse=True)
