"""Profile resolution of notebook parameters and device choice."""

import pytest
import torch

import mmdflow


def test_for_profile_picks_the_profile_entry_and_keeps_overrides():
    n, tau, name = mmdflow.for_profile("paper", {"quick": 200, "paper": 2000}, 0.05, "x")
    assert (n, tau, name) == (2000, 0.05, "x")
    assert mmdflow.for_profile("quick", {"quick": 200, "paper": 2000}) == 200
    # a dict that is not a profile table is passed through unchanged
    assert mmdflow.for_profile("quick", {"a": 1}) == {"a": 1}


def test_for_profile_rejects_unknown_profile():
    with pytest.raises(ValueError, match="profile must be one of .* got 'fast'"):
        mmdflow.for_profile("fast", 1)


def test_default_device_matches_cuda_availability():
    assert mmdflow.default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_timed_returns_the_result_and_waits_for_the_gpu(monkeypatch):
    import time

    from mmdflow.runtime import timed

    out, seconds = timed(lambda: (time.sleep(0.02), 7)[1])
    assert out == 7 and 0.02 <= seconds < 5.0
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))
    assert timed(lambda: 1, device="cuda")[0] == 1 and calls == ["cuda"]       # the clock stops after the GPU
    timed(lambda: 1, device=torch.device("cpu"))
    timed(lambda: 1)
    assert calls == ["cuda"]                                                     # no synchronisation on the CPU


def test_cpu_threads_sets_the_count_on_the_cpu_only_and_refuses_bad_values():
    import torch
    from mmdflow.runtime import cpu_threads
    before = torch.get_num_threads()
    try:
        assert cpu_threads(1, "cpu") == 1 == torch.get_num_threads()
        assert cpu_threads(None, "cpu") == 1                  # None keeps the count
        assert cpu_threads(2, "cuda") == 1                    # another device: nothing set
        for bad in (0, -1, 1.5, True, "2"):
            with pytest.raises(ValueError, match=f"got {bad!r}"):
                cpu_threads(bad)
    finally:
        torch.set_num_threads(before)
