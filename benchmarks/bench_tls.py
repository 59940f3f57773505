"""TLS distribution benchmark: the workload of ``bench_dist.py`` over plain TCP and over TLS, in the
same run, with real OTP nodes (``erl -proto_dist inet_tls``, verify_peer both sides) and philipjose.

Workload: N one-way messages ``{row, 1, <<32 bytes>>, 2.5, [1,2,3]}`` to a registered ``sink`` (timed
until the sink's count comes back), then R ping-pong round trips with ``echo``. For each transport
(tcp, tls): erl drives erl, erl drives philipjose (``examples/interop_node.py``), philipjose drives erl.

    python3 benchmarks/bench_tls.py [--messages 200000] [--round-trips 20000]

Needs ``erl``, ``erlc``, ``epmd`` and ``openssl`` (a throwaway CA is made in a temporary folder with
``tests/tls/certs.py``). Everything runs on loopback with a private ``epmd`` port.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_dist
from bench_dist import COOKIE, ERLANG, ROOT, free_port, wait_line

from tests.tls.certs import NodeFiles, make_pki, write_optfile


def tls_args(mode: str, optfile: Path) -> list[str]:
    return ["-proto_dist", "inet_tls", "-ssl_dist_optfile", str(optfile)] if mode == "tls" else []


def py_tls_args(mode: str, files: NodeFiles) -> list[str]:
    if mode != "tls":
        return []
    return [
        "--tls-certfile",
        str(files.certfile),
        "--tls-keyfile",
        str(files.keyfile),
        "--tls-cafile",
        str(files.cafile),
    ]


def erl(beam: Path, name: str, extra: list[str], *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    argv = ["erl", "-noshell", "-sname", name, "-setcookie", COOKIE, "-pa", str(beam), *extra, *args]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)


def drive_from_erl(
    beam: Path, target: str, extra: list[str], n: int, r: int, env: dict[str, str]
) -> tuple[float, float, int]:
    name = f"drv{os.getpid()}{target[:6]}"
    driver = erl(beam, name, extra, "-run", "pj_bench", "drive", target, str(n), str(r), env=env)
    fields = wait_line(driver, "RESULT").split()
    driver.wait()
    _, _, n_s, one_us, count, r_s, ping_us = fields
    return int(n_s) / (int(one_us) / 1e6), int(r_s) / (int(ping_us) / 1e6), int(count)


def drive_from_python(
    target: str, mode: str, files: NodeFiles, n: int, r: int, env: dict[str, str]
) -> tuple[float, float, int]:
    tls = (
        f"tls_config({str(files.certfile)!r}, {str(files.keyfile)!r}, {str(files.cafile)!r})"
        if mode == "tls"
        else "None"
    )
    return bench_dist.drive_from_python(target, n, r, env, name=f"pydrv{mode}", tls=tls)


Row = tuple[float, float, int]


def run_mode(
    mode: str, beam: Path, files: NodeFiles, optfile: Path, n: int, r: int, env: dict[str, str]
) -> list[Row]:
    """erl -> erl, erl -> philipjose, philipjose -> erl over ``mode`` (tcp or tls)."""
    extra = tls_args(mode, optfile)
    procs: list[subprocess.Popen[str]] = []
    try:
        erl_target = f"erl{mode}{os.getpid()}@localhost"
        py_target = f"py{mode}{os.getpid()}@localhost"
        target = erl(beam, erl_target, extra, "-run", "pj_bench", "serve", env=env)
        procs.append(target)
        wait_line(target, "ready")
        py_argv = [sys.executable, str(ROOT / "examples" / "interop_node.py"), py_target, COOKIE]
        py = subprocess.Popen(
            [*py_argv, *py_tls_args(mode, files)], env=env, stdout=subprocess.PIPE, text=True
        )
        procs.append(py)
        wait_line(py, "ready")
        return [
            drive_from_erl(beam, erl_target, extra, n, r, env),
            drive_from_erl(beam, py_target, extra, n, r, env),
            drive_from_python(erl_target, mode, files, n, r, env),
        ]
    finally:
        for proc in reversed(procs):
            proc.kill()
            proc.wait()


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--round-trips", type=int, default=20_000)
    args = parser.parse_args()
    n, r = args.messages, args.round_trips
    epmd_port = free_port()
    env = dict(os.environ, ERL_EPMD_PORT=str(epmd_port), PYTHONPATH=str(ROOT))
    results: dict[str, list[Row]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = make_pki("openssl", folder).good
        optfile = write_optfile(folder / "dist.conf", files)
        (folder / "pj_bench.erl").write_text(ERLANG)
        subprocess.run(["erlc", "-o", str(folder), str(folder / "pj_bench.erl")], check=True)
        epmd = subprocess.Popen(["epmd", "-port", str(epmd_port)], env=env)
        try:
            time.sleep(0.5)  # a benchmark, not a test: give epmd a moment to listen
            for mode in ("tcp", "tls"):
                results[mode] = run_mode(mode, folder, files, optfile, n, r, env)
        finally:
            epmd.kill()
            epmd.wait()
    print(f"workload: {n} one-way messages {{row, 1, <<32 bytes>>, 2.5, [1,2,3]}}, {r} ping-pong round trips")
    print(f"{'driver -> target':<22}{'mode':<6}{'one-way msg/s':>16}{'round trips/s':>16}  sink count")
    labels = ["erl -> erl", "erl -> philipjose", "philipjose -> erl"]
    for mode in ("tcp", "tls"):
        for label, (one, ping, count) in zip(labels, results[mode], strict=True):
            print(f"{label:<22}{mode:<6}{one:>16,.0f}{ping:>16,.0f}  {count}")
    print("TLS / TCP (same driver and target):")
    for i, label in enumerate(labels):
        (t_one, t_ping, _), (s_one, s_ping, _) = results["tcp"][i], results["tls"][i]
        print(f"  {label:<20} one-way {s_one / t_one:.1%}, ping-pong {s_ping / t_ping:.1%}")
    (e_one, e_ping, _), (p_one, p_ping, _) = results["tls"][0], results["tls"][1]
    print(
        f"philipjose/erl over TLS (erl driving): one-way {p_one / e_one:.1%}, ping-pong {p_ping / e_ping:.1%}"
    )


if __name__ == "__main__":
    main()
