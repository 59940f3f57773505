"""Workers started through Slurm (``philipjose.farm.slurm``).

The pure decisions are tested without Slurm. The rest runs against a real one-host cluster (munged,
slurmctld, slurmd: ``.ci/slurm start``). Those tests skip when ``sinfo`` does not answer, except
under ``PHILIPJOSE_REQUIRE_SLURM=1`` (set by ``.ci/run``), where they fail.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

import philipjose
from philipjose import farm
from philipjose.farm.machines import dump_machines, parse_machines
from philipjose.farm.policy import UP
from philipjose.farm.slurm import (
    Slurm,
    SlurmError,
    allocation_argv,
    enclosing_job,
    is_active,
    is_listed,
    job_state,
    partition_problem,
    probe_argv,
    step_argv,
)
from philipjose.farm.validate import validate_machine
from tests.farm._slurm_tasks import where_square
from tests.farm.test_cli import _philipjose, _run

# -- the pure part -------------------------------------------------------------------------------------


def test_a_slurm_source_checks_its_fields() -> None:
    source = Slurm(workers=4, partition="gpu", time="1:30:00", account="proj-1", extra=["--qos=short"])
    assert source.extra == ("--qos=short",) and source.host == "slurm-gpu" and not source.is_local
    assert Slurm().host == "slurm" and Slurm(name="big").host == "big"
    assert Slurm().python_command() == sys.executable
    for bad, key in [
        ({"workers": 0}, "workers"),
        ({"workers": True}, "workers"),
        ({"partition": "two words"}, "partition"),
        ({"partition": "-p"}, "partition"),
        ({"time": "soon"}, "time"),
        ({"time": "1:2:3:4"}, "time"),
        ({"extra": ["qos=short"]}, "extra"),
        ({"extra": ["--x\n--y"]}, "extra"),
        ({"step_options": "--exclusive"}, "step_options"),
        ({"cpus_per_worker": 0}, "cpus_per_worker"),
        ({"python": ""}, "python"),
    ]:
        with pytest.raises(farm.MachinesError, match=f"Slurm {key} "):
            Slurm(**bad)  # type: ignore[arg-type]
    for good in ["30", "30:00", "1:00:00", "2-12", "2-12:30", "2-12:30:00", "INFINITE", "unlimited"]:
        assert Slurm(time=good).time == good


def test_the_commands_run_for_an_allocation_a_worker_and_a_probe() -> None:
    source = Slurm(workers=3, partition="debug", time="10", account="a", extra=["--qos=q"], cpus_per_worker=2)
    argv = allocation_argv(source, "philipjose-farm-abc")
    assert argv[:4] == ["salloc", "--job-name=philipjose-farm-abc", "--ntasks=3", "--cpus-per-task=2"]
    assert argv[4:9] == ["--partition=debug", "--time=10", "--account=a", "--qos=q", "--kill-command=TERM"]
    assert argv[9:12] == ["--", "sh", "-c"] and "SLURM_JOB_ID" in argv[12] and "exec cat" in argv[12]
    step = step_argv(Slurm(step_options=["--mem=1G"], python="/opt/py"), "42", ["-m", "philipjose", "worker"])
    assert step == [
        "srun",
        "--jobid=42",
        "--nodes=1",
        "--ntasks=1",
        "--cpus-per-task=1",
        "--exact",
        "--quiet",
        "--mem=1G",
        "/opt/py",
        "-m",
        "philipjose",
        "worker",
    ]
    outside = probe_argv(source, {})
    assert outside[1:6] == ["--partition=debug", "--time=10", "--account=a", "--qos=q", "--nodes=1"]
    assert outside[-1] == "-"
    inside = probe_argv(source, {"SLURM_JOB_ID": "7"})
    assert inside[1:3] == ["--jobid=7", "--exact"] and "--partition=debug" not in inside
    assert enclosing_job({"SLURM_JOB_ID": " 12 "}) == "12"
    assert enclosing_job({}) is None and enclosing_job({"SLURM_JOB_ID": "x"}) is None


def test_what_sinfo_and_squeue_say_decides() -> None:
    sinfo = "debug*\ngpu\n"
    assert partition_problem(sinfo, None) is None and partition_problem(sinfo, "gpu") is None
    assert partition_problem(sinfo, "nope") == (
        "partition 'nope' does not exist on this cluster (partitions: debug, gpu)"
    )
    assert "no default partition" in (partition_problem("gpu\n", None) or "")
    assert job_state(0, "RUNNING\n") == "RUNNING" and job_state(0, "") == ""
    assert job_state(1, "", "squeue: error: Unable to contact slurm controller") is None
    assert job_state(1, "", "slurm_load_jobs error: Invalid job id specified") == ""  # purged: ended
    for state in ["RUNNING", "PENDING", "CONFIGURING", "SUSPENDED", "RUNNING+", None]:
        assert is_active(state) and is_listed(state), state
    for state in ["", "CANCELLED", "TIMEOUT", "PREEMPTED", "NODE_FAIL", "COMPLETED", "COMPLETING"]:
        assert not is_active(state), state
    assert is_listed("COMPLETING") and not is_listed("CANCELLED") and not is_listed("")


def test_the_registry_holds_slurm_sources() -> None:
    text = textwrap.dedent(
        """\
        version = 1
        [machines.cluster]
        kind = "slurm"
        workers = 8
        partition = "debug"
        time = "1:00:00"
        extra = ["--qos=short"]
        [machines.localhost]
        workers = 2
        """
    )
    machines = parse_machines(text, "m.toml")
    source = machines["cluster"]
    assert source == Slurm(
        workers=8, partition="debug", time="1:00:00", extra=("--qos=short",), name="cluster"
    )
    assert parse_machines(dump_machines(machines.values())) == machines
    with pytest.raises(farm.MachinesError, match=r"machines.c.ssh_options: unknown key .*kind 'slurm'"):
        parse_machines('[machines.c]\nkind = "slurm"\nssh_options = []\n', "m.toml")
    with pytest.raises(farm.MachinesError, match=r"m.toml: machines.c: Slurm workers must be"):
        parse_machines('[machines.c]\nkind = "slurm"\nworkers = 0\n', "m.toml")
    with pytest.raises(farm.MachinesError, match=r"m.toml: machines.c.extra: \[0\] must be"):
        parse_machines('[machines.c]\nkind = "slurm"\nextra = [3]\n', "m.toml")


def test_machines_add_registers_a_slurm_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = str(tmp_path / "m.toml")
    argv = [
        "machines",
        "add",
        "hpc",
        "--kind",
        "slurm",
        "--workers",
        "8",
        "--partition",
        "debug",
        "--time",
        "30",
    ]
    assert _run(capsys, *argv, "--slurm-option=--qos=short", "--machines", registry)[0] == 0
    assert parse_machines(Path(registry).read_text())["hpc"] == Slurm(
        workers=8, partition="debug", time="30", extra=("--qos=short",), name="hpc"
    )
    assert _run(capsys, "machines", "list", "--machines", registry)[1].split() == [
        "hpc",
        "(slurm)",
        "workers=8",
        "partition=debug",
        "time=30",
        "extra=--qos=short",
    ]
    for bad, said in [
        (["box", "--partition", "debug"], "--partition: Slurm options, for a Slurm source"),
        (["c2", "--kind", "slurm", "--ssh-opt", "Port=1"], "--ssh-opt does not go with --kind slurm"),
        (["c3", "--kind", "slurm", "--time", "soon"], "Slurm time must be a Slurm time limit"),
    ]:
        status, out, err = _run(capsys, "machines", "add", *bad, "--machines", registry)
        assert (status, out) == (2, "") and err.startswith(f"philipjose machines: error: {said}"), err
        assert len(err.splitlines()) == 1


# -- against a real slurmctld and slurmd ------------------------------------------------------------


def _sinfo_problem() -> str | None:
    if shutil.which("sinfo") is None:
        return "Slurm's sinfo is not installed (apt-get install slurm-wlm munge; .ci/slurm start)"
    try:
        done = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 20 s"
    if done.returncode != 0 or not done.stdout.strip():
        return f"no Slurm cluster answers (.ci/slurm start): {done.stderr.strip()}"
    return None


@pytest.fixture(scope="module")
def slurm_cluster() -> None:
    problem = _sinfo_problem()
    if problem is None:
        return
    if os.environ.get("PHILIPJOSE_REQUIRE_SLURM") == "1":
        pytest.fail(f"{problem}, and PHILIPJOSE_REQUIRE_SLURM=1 requires it")
    pytest.skip(problem)


def _squeue(job: str) -> str:
    """What a plain ``squeue -j JOB`` lists of the job: its state, or "" when it is not listed."""
    done = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True, timeout=30)
    return done.stdout.strip()


@pytest.fixture
def no_job_left_behind(slurm_cluster: None) -> Iterator[list[str]]:
    """The jobs a test saw; after it, none of them is still listed by squeue."""
    jobs: list[str] = []
    yield jobs
    assert {job: _squeue(job) for job in jobs} == dict.fromkeys(jobs, "")


async def test_two_slurm_workers_map_200_tasks_in_a_job_that_ends_with_the_farm(
    no_job_left_behind: list[str],
) -> None:
    async with farm.Farm(machines=[Slurm(workers=2)]) as f:
        assert len(f.workers) == 2 and all(w.machine == "slurm" for w in f.workers)
        results = await f.map(where_square, range(200))
        assert [r[0] for r in results] == [x * x for x in range(200)]
        jobs = {r[1] for r in results}
        assert len(jobs) == 1 and "" not in jobs, jobs  # every task ran in one Slurm job...
        (job,) = jobs
        no_job_left_behind.append(job)
        assert len({r[2] for r in results}) == 2  # ...in the two workers' steps
        assert await trio.to_thread.run_sync(_squeue, job) == "RUNNING"
    assert _squeue(job) == ""  # the farm cancelled it and waited until it left the queue


async def test_scancel_of_the_job_mid_map_ends_in_a_complete_map_in_a_new_job(
    no_job_left_behind: list[str],
) -> None:
    async with farm.Farm(machines=[Slurm(workers=2)]) as f:
        first = f.workers
        futures = [f.submit(where_square, x) for x in range(200)]
        seen = 0
        async for future in f.as_completed(futures):
            seen += 1
            if seen == 20:
                first_job = future.result()[1]
                no_job_left_behind.append(first_job)
                await trio.run_process(["scancel", first_job])
        results = [future.result() for future in futures]
        assert [r[0] for r in results] == [x * x for x in range(200)]
        jobs = {r[1] for r in results}
        assert first_job in jobs and len(jobs) == 2, jobs  # the rest ran in the farm's new job
        no_job_left_behind.extend(jobs)
        assert f.counters.workers_lost >= 2 and [m.state for m in f.machines] == [UP]
        assert all(not w.alive for w in first) and all(w.alive for w in f.workers) and len(f.workers) == 2


def _step_of(pid: int) -> str:
    """``JOB.STEP`` of the Slurm task with OS pid ``pid`` on this node (``scontrol listpids``)."""
    done = subprocess.run(["scontrol", "listpids"], capture_output=True, text=True, timeout=30, check=True)
    for line in done.stdout.splitlines()[1:]:  # PID JOBID STEPID LOCALID GLOBALID
        fields = line.split()
        if fields and fields[0] == str(pid):
            return f"{fields[1]}.{fields[2]}"
    raise LookupError(f"no Slurm step has pid {pid}: {done.stdout}")


@pytest.mark.parametrize(
    ("kill", "causes"),  # srun exits with 128 + the signal that ended its task: SIGKILL, or SIGTERM first
    [
        ("sigkill", {"exited with status 137"}),
        ("scancel-step", {"exited with status 137", "exited with status 143"}),
    ],
)
async def test_a_worker_killed_or_whose_step_is_cancelled_is_replaced_in_the_same_job(
    no_job_left_behind: list[str], kill: str, causes: set[str]
) -> None:
    async with farm.Farm(machines=[Slurm(workers=2)]) as f:
        victim = f.workers[0]
        assert victim.os_pid is not None and victim.host == os.uname().nodename.split(".")[0]
        futures = [f.submit(where_square, x) for x in range(200)]
        seen = 0
        async for _ in f.as_completed(futures):
            seen += 1
            if seen == 20 and kill == "sigkill":
                os.kill(victim.os_pid, signal.SIGKILL)  # the task on the compute node (this host)
            elif seen == 20:
                step = await trio.to_thread.run_sync(_step_of, victim.os_pid)
                await trio.run_process(["scancel", step])
        results = [future.result() for future in futures]
        assert [r[0] for r in results] == [x * x for x in range(200)]
        jobs = {r[1] for r in results}
        no_job_left_behind.extend(jobs)
        assert len(jobs) == 1 and len({r[2] for r in results}) == 3  # a third step, same job
        assert not victim.alive and victim.cause in causes, victim
        assert victim not in f.workers and all(w.alive for w in f.workers) and len(f.workers) == 2
        assert f.counters.workers_lost == 1 and [m.state for m in f.machines] == [UP]


async def test_the_cookie_is_on_no_command_line_and_in_no_environment(slurm_cluster: None) -> None:
    async with farm.Farm(machines=[Slurm(workers=1)]) as f:
        cookie = f._cookie
        pid = f.workers[0].os_pid
        assert pid is not None
        assert cookie not in Path(f"/proc/{pid}/cmdline").read_bytes()
        assert cookie not in Path(f"/proc/{pid}/environ").read_bytes()
        for proc in Path("/proc").iterdir():  # srun, salloc, slurmstepd, the worker: nobody's argv
            try:
                assert cookie not in (proc / "cmdline").read_bytes(), proc
            except (FileNotFoundError, ProcessLookupError, NotADirectoryError, PermissionError):
                continue


async def test_a_queued_job_is_waited_for_and_withdrawn_when_the_start_is_cancelled(
    slurm_cluster: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "philipjose.farm.slurm")
    cpus = os.cpu_count() or 1
    f = farm.Farm(machines=[Slurm(workers=cpus + 1)], start_timeout=1)  # more CPUs than the node has
    with trio.move_on_after(4) as waited:  # the start waits as long as the job is queued...
        async with f:
            pytest.fail("a farm started on a job that cannot run")  # pragma: no cover
    assert waited.cancelled_caught
    assert any("queued and waiting for resources" in r.getMessage() for r in caplog.records), caplog.text
    listed = subprocess.run(["squeue", "-h", "-o", "%j"], capture_output=True, text=True, timeout=30)
    assert f"philipjose-farm-{f._id}" not in listed.stdout.split(), listed.stdout  # ...and withdraws it


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        (["--mem=99999999"], "Requested node configuration is not available"),  # more than the node has
        (["--immediate=1", "--ntasks-per-node=64"], "salloc: error: "),  # not now, and not waiting
    ],
)
async def test_a_job_slurm_refuses_fails_the_start_with_sallocs_reason(
    slurm_cluster: None, extra: list[str], reason: str
) -> None:
    with trio.fail_after(30):
        with pytest.raises(SlurmError, match=r"^slurm: no Slurm allocation: salloc: error: ") as raised:
            async with farm.Farm(machines=[Slurm(workers=1, extra=extra)]):
                pass  # pragma: no cover
    assert reason in str(raised.value)


async def test_a_missing_partition_is_reported_at_once(slurm_cluster: None) -> None:
    with trio.fail_after(30):
        with pytest.raises(SlurmError, match=r"^slurm-nope: partition 'nope' does not exist on this cluster"):
            async with farm.Farm(machines=[Slurm(workers=1, partition="nope")]):
                pass  # pragma: no cover
    result = await validate_machine(Slurm(partition="nope"))
    assert not result.qualified
    assert result.reason.startswith("partition 'nope' does not exist on this cluster (partitions: ")


async def test_validation_probes_a_compute_node_through_srun(slurm_cluster: None) -> None:
    result = await validate_machine(Slurm())
    assert result.qualified, result.reason
    assert result.host == "slurm" and result.philipjose_version == philipjose.__version__
    assert result.python == sys.executable and result.cores is not None


def test_the_cli_runs_a_farm_on_slurm_and_validates_slurm_sources(
    slurm_cluster: None, tmp_path: Path
) -> None:
    (tmp_path / "job.py").write_text(
        "async def main(farm):\n    print(sum(await farm.map(abs, range(-9, 1))))\n"
    )
    done = _philipjose("farm", "run", "--slurm", "2", "job.py", cwd=tmp_path, config=tmp_path / "cfg")
    assert (done.returncode, done.stdout) == (0, "45\n"), done.stderr
    done = _philipjose(
        "farm", "run", "job.py", "--slurm", "1", "--partition", "nope", cwd=tmp_path, config=tmp_path / "cfg"
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "philipjose farm run: error: slurm-nope: partition 'nope' does not exist on this cluster "
        "(partitions: " + done.stderr.split("(partitions: ")[1].rstrip()
    ]
    registry = tmp_path / "machines.toml"
    registry.write_text('[machines.hpc]\nkind = "slurm"\nworkers = 2\npartition = "nope"\n')
    done = _philipjose(
        "machines", "validate", "--machines", str(registry), cwd=tmp_path, config=tmp_path / "cfg"
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines()[0].split() == ["hpc", "NOT", "qualified"]
    assert "reason: partition 'nope' does not exist on this cluster" in done.stdout
    listing = _philipjose(
        "machines", "list", "--machines", str(registry), cwd=tmp_path, config=tmp_path / "cfg"
    )
    assert listing.stdout.split() == ["hpc", "(slurm)", "workers=2", "partition=nope"]


def test_an_sbatch_script_runs_its_farm_in_its_own_job(no_job_left_behind: list[str], tmp_path: Path) -> None:
    (tmp_path / "job.py").write_text(
        "import os\n"
        "def job_of(_):\n"
        "    return os.environ['SLURM_JOB_ID']\n"
        "async def main(farm):\n"
        "    print(sorted(set(await farm.map(job_of, range(20)))), len(farm.workers))\n"
    )
    (tmp_path / "farm.sbatch").write_text(
        "#!/bin/bash\n"
        "#SBATCH --ntasks=2\n"
        "#SBATCH --output=farm-%j.out\n"
        f'{sys.executable} -m philipjose farm run job.py --slurm "$SLURM_NTASKS"\n'
    )
    done = subprocess.run(
        ["sbatch", "--wait", "--parsable", "farm.sbatch"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    job = done.stdout.strip().split(";")[0]
    no_job_left_behind.append(job)
    output = (tmp_path / f"farm-{job}.out").read_text()
    assert done.returncode == 0, output + done.stderr
    assert output == f"['{job}'] 2\n"  # both workers were steps of the batch job, no other job
