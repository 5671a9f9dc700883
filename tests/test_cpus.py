"""wcbench.cpus: the CPUs a process may use (affinity, cgroup quota, SLURM), the thread and worker
defaults that follow, the overrides, and the OpenMP wait policy set before torch loads (issue #16)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.timeouts import hang_guard
from wcbench import cpus
from wcbench.cli import main
from wcbench.errors import ConfigError
from wcbench.runs import environment_info

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def fresh_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unconfigured wcbench.cpus, and torch's thread count put back afterwards."""
    before = torch.get_num_threads()
    monkeypatch.setattr(cpus, "_state", {})
    yield
    torch.set_num_threads(before)


def fake_cgroup(tmp_path: Path, proc: str, files: dict[str, str]) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text + "\n")
    (tmp_path / "proc_cgroup").write_text(proc)
    return root, tmp_path / "proc_cgroup"


# ------------------------------------------------------------------------------------ limits


def test_cgroup_v2_quota_is_the_tightest_along_the_path(tmp_path: Path) -> None:
    root, proc = fake_cgroup(
        tmp_path,
        "0::/job/step\n",
        {"job/cpu.max": "150000 100000", "job/step/cpu.max": "max 100000", "cpu.max": "400000 100000"},
    )
    assert cpus.cgroup_cpus(root, proc) == pytest.approx(1.5)


def test_cgroup_v2_in_a_container_reads_the_mount_root(tmp_path: Path) -> None:
    root, proc = fake_cgroup(tmp_path, "0::/\n", {"cpu.max": "200000 100000"})
    assert cpus.cgroup_cpus(root, proc) == pytest.approx(2.0)
    root, proc = fake_cgroup(tmp_path / "b", "0::/\n", {"cpu.max": "max 100000"})
    assert cpus.cgroup_cpus(root, proc) is None


def test_cgroup_v1_quota_and_period(tmp_path: Path) -> None:
    files = {
        "cpu,cpuacct/slurm/uid_1/cpu.cfs_quota_us": "50000",
        "cpu,cpuacct/slurm/uid_1/cpu.cfs_period_us": "100000",
        "cpu,cpuacct/cpu.cfs_quota_us": "-1",
        "cpu,cpuacct/cpu.cfs_period_us": "100000",
    }
    root, proc = fake_cgroup(tmp_path, "9:name=systemd:/\n4:cpu,cpuacct:/slurm/uid_1\n3:memory:/x\n", files)
    assert cpus.cgroup_cpus(root, proc) == pytest.approx(0.5)
    root, proc = fake_cgroup(tmp_path / "b", "4:cpu,cpuacct:/\n", {"cpu,cpuacct/cpu.cfs_quota_us": "-1"})
    assert cpus.cgroup_cpus(root, proc) is None


def test_no_cgroup_files_means_no_limit(tmp_path: Path) -> None:
    assert cpus.cgroup_cpus(tmp_path / "none", tmp_path / "missing") is None


def test_allowed_cpus_is_the_smallest_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)
    root, proc = fake_cgroup(tmp_path, "0::/\n", {"cpu.max": "250000 100000"})
    limits = cpus.cpu_limits({}, root, proc)
    assert (limits["affinity"], limits["cgroup"], limits["slurm"]) == (6, 2.5, None)
    assert limits["allowed"] == 2  # a fractional quota rounds down
    assert cpus.cpu_limits({"SLURM_CPUS_PER_TASK": "1"}, root, proc)["allowed"] == 1
    nothing = tmp_path / "none"
    assert cpus.cpu_limits({"SLURM_CPUS_PER_TASK": "4"}, nothing, nothing)["allowed"] == 4
    assert cpus.cpu_limits({}, nothing, nothing)["allowed"] == 6
    root, proc = fake_cgroup(tmp_path / "b", "0::/\n", {"cpu.max": "20000 100000"})
    assert cpus.cpu_limits({}, root, proc)["allowed"] == 1  # never below one CPU


def test_slurm_cpus_ignores_what_is_not_a_positive_count() -> None:
    assert cpus.slurm_cpus({"SLURM_CPUS_PER_TASK": "3"}) == 3
    assert cpus.slurm_cpus({"SLURM_CPUS_PER_TASK": "0"}) is None
    assert cpus.slurm_cpus({"SLURM_CPUS_PER_TASK": "two"}) is None
    assert cpus.slurm_cpus({}) is None


# ------------------------------------------------------------------------------------ threads, workers


def test_thread_precedence_user_omp_then_argument_then_env_then_allowed() -> None:
    env = {"OMP_NUM_THREADS": "3", "WCBENCH_THREADS": "5"}
    assert cpus.plan_threads(3, 2, env, allowed=2) == (3, "OMP_NUM_THREADS")
    assert cpus.plan_threads(4, None, {"MKL_NUM_THREADS": "4"}, allowed=2) == (4, "MKL_NUM_THREADS")
    assert cpus.plan_threads(8, 2, {"WCBENCH_THREADS": "5"}, allowed=2) == (2, "argument")
    assert cpus.plan_threads(8, None, {"WCBENCH_THREADS": "5"}, allowed=2) == (5, "WCBENCH_THREADS")
    assert cpus.plan_threads(8, None, {}, allowed=2) == (2, "allowed cpus")
    n, source = cpus.plan_threads(2, None, {}, allowed=4)  # never more than torch's own default
    assert n == 2 and source.startswith("torch default")
    with pytest.raises(ConfigError, match="WCBENCH_THREADS"):
        cpus.plan_threads(2, None, {"WCBENCH_THREADS": "0"}, allowed=2)
    with pytest.raises(ConfigError, match="WCBENCH_THREADS"):
        cpus.plan_threads(2, None, {"WCBENCH_THREADS": "many"}, allowed=2)


def test_default_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpus, "_state", {})
    assert cpus.default_workers({"WCBENCH_WORKERS": "0"}) == 0
    assert cpus.default_workers({"WCBENCH_WORKERS": "3"}) == 3
    for allowed, workers in ((1, 0), (2, 1), (4, 3), (32, 8)):
        monkeypatch.setattr(cpus, "allowed_cpus", lambda env=None, n=allowed: n)
        assert cpus.default_workers({}) == workers
    with pytest.raises(ConfigError, match="WCBENCH_WORKERS"):
        cpus.default_workers({"WCBENCH_WORKERS": "-1"})


def test_configure_threads_applies_the_override(monkeypatch: pytest.MonkeyPatch, fresh_state: None) -> None:
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "WCBENCH_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WCBENCH_THREADS", "1")
    rec = cpus.configure_threads(workers=0)
    assert torch.get_num_threads() == 1
    assert (rec["threads"], rec["threads_source"]) == (1, "WCBENCH_THREADS")
    assert (rec["workers"], rec["workers_source"]) == (0, "argument")
    assert cpus.default_workers() == 0
    monkeypatch.setenv("WCBENCH_WORKERS", "2")
    rec = cpus.configure_threads()
    assert (rec["workers"], rec["workers_source"]) == (2, "WCBENCH_WORKERS")


def test_configure_threads_caps_torch_at_the_allowed_cpus(
    monkeypatch: pytest.MonkeyPatch, fresh_state: None
) -> None:
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "WCBENCH_THREADS"):
        monkeypatch.delenv(name, raising=False)
    limits = {"affinity": 1, "cgroup": None, "slurm": None, "cpu_count": 2, "allowed": 1}
    monkeypatch.setattr(cpus, "cpu_limits", lambda *a, **k: dict(limits))
    torch.set_num_threads(2)
    rec = cpus.configure_threads()
    assert torch.get_num_threads() == 1 and rec["threads_source"] == "allowed cpus"
    assert rec["allowed_cpus"] == 1 and rec["workers"] == 0
    limits.update(affinity=4, allowed=4)
    assert cpus.configure_threads()["threads"] == 1  # never raised without an override


def test_configure_threads_leaves_the_users_omp_num_threads(
    monkeypatch: pytest.MonkeyPatch, fresh_state: None
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("WCBENCH_THREADS", "2")
    torch.set_num_threads(1)
    rec = cpus.configure_threads()
    assert torch.get_num_threads() == 1 and rec["threads_source"] == "OMP_NUM_THREADS"


def test_cli_reports_a_bad_override_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fresh_state: None
) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.setenv("WCBENCH_THREADS", "lots")
    assert main(["list", "spaces"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "WCBENCH_THREADS='lots'" in err


def test_the_manifest_records_threads_workers_and_wait_policy() -> None:
    rec = environment_info()["cpus"]
    assert rec["threads"] == torch.get_num_threads()
    assert rec["workers"] == cpus.default_workers()
    assert rec["wait_policy"] and rec["wait_policy_source"] and rec["allowed_cpus"] >= 1
    assert set(rec["limits"]) == {"affinity", "cgroup", "slurm", "cpu_count"}


# ------------------------------------------------------------------------------------ wait policy


def test_wait_policy_is_passive_unless_the_user_chose() -> None:
    env: dict[str, str] = {}
    assert cpus.set_wait_policy(env, torch_loaded=False) == "PASSIVE"
    assert env["OMP_WAIT_POLICY"] == "PASSIVE"
    env = {"OMP_WAIT_POLICY": "active"}
    assert cpus.set_wait_policy(env, torch_loaded=False) == "ACTIVE"
    assert env == {"OMP_WAIT_POLICY": "active"}
    env = {"WCBENCH_WAIT_POLICY": "default"}
    assert cpus.set_wait_policy(env, torch_loaded=False) == "default" and "OMP_WAIT_POLICY" not in env
    env = {"WCBENCH_WAIT_POLICY": "Active"}
    assert cpus.set_wait_policy(env, torch_loaded=False) == "ACTIVE" and env["OMP_WAIT_POLICY"] == "ACTIVE"
    env = {}  # torch loaded first: its OpenMP runtime kept its default; children get PASSIVE
    assert cpus.set_wait_policy(env, torch_loaded=True) == "default" and env["OMP_WAIT_POLICY"] == "PASSIVE"


def _fresh_python(code: str, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "WCBENCH_", "_WCBENCH_"))}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**base, "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=hang_guard(120),
        check=True,
    )
    return out.stdout.strip()


def test_import_wcbench_sets_the_wait_policy_without_importing_torch() -> None:
    code = "import os, sys, wcbench; print(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)"
    assert _fresh_python(code) == "PASSIVE False"
    assert _fresh_python(code, OMP_WAIT_POLICY="ACTIVE") == "ACTIVE False"
    code = "import os, wcbench; print(os.environ.get('OMP_WAIT_POLICY'))"
    assert _fresh_python(code, WCBENCH_WAIT_POLICY="default") == "None"


def test_a_child_process_reports_the_inherited_default_as_wcbench_s() -> None:
    code = "import wcbench.cpus as c; r = c.record(); print(r['wait_policy'], '|', r['wait_policy_source'])"
    assert _fresh_python(code) == "PASSIVE | wcbench default"
    assert _fresh_python(code, OMP_WAIT_POLICY="PASSIVE", _WCBENCH_SET_OMP_WAIT_POLICY="PASSIVE") == (
        "PASSIVE | wcbench default (inherited)"
    )
    assert _fresh_python(code, OMP_WAIT_POLICY="PASSIVE") == "PASSIVE | OMP_WAIT_POLICY"


def test_fair_share_slowdown() -> None:
    assert cpus.fair_share_slowdown(0, 2, 2) == pytest.approx(1.0)
    assert cpus.fair_share_slowdown(2, 2, 2) == pytest.approx(2.0)
    assert cpus.fair_share_slowdown(1, 1, 2) == pytest.approx(1.0)  # room for both
    assert cpus.fair_share_slowdown(2, 1, 2) == pytest.approx(1.5)
    assert cpus.fair_share_slowdown(6, 2, 2) == pytest.approx(4.0)
