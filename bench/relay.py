"""Relay benchmark: round trips direct to an upstream versus through the sidecar.

What it owns: starting an upstream, the sidecar (``chatguard run``) and a load
generator as separate processes on 127.0.0.1, measuring messages per second,
round-trip latency and the sidecar's CPU time, and printing the comparison.

One file, three roles, chosen by the first option:

* (none)         the orchestrator: starts the others, runs every measurement,
                 prints the table (or ``--json``);
* ``--loadgen``  N WebSocket connections, each in a closed loop (send one
                 chat message to its own room, wait for it to come back, repeat),
                 printing one JSON result on stdout;
* ``--serve-echo`` the minimal echo upstream (aiohttp on uvloop): the same
                 welcome frame as the example chat service, then every frame
                 echoed back, so the relay's own cost is what is measured.

Invariants:

* All traffic is to 127.0.0.1; nothing listens on any other address.
* Every loop is bounded in count and in time: connection opening, warm-up and
  measurement have deadlines, and every child process has a wall-clock limit
  after which the orchestrator kills it.
* The orchestrator ends only the processes it started, by pid, on every exit
  path (normal end, error, Ctrl-C, SIGTERM); the children also get SIGTERM if
  the orchestrator dies first (``PR_SET_PDEATHSIG``, Linux).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import math
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import aiohttp
from aiohttp import WSMsgType, web

HOST = "127.0.0.1"
TEXT = "hey, are you coming to the match on saturday? bring the blue scarf"
CONNECT_BATCH = 100  # connections opened at once: below every listener's backlog
CONNECT_BUDGET = 60.0  # seconds to open all connections of one measurement
REPLY_GRACE = 5.0  # seconds a round trip may still take after the window closes
UPSTREAMS = {"echo": "aiohttp echo server on uvloop", "example": "the example chat service"}
TARGET_CONNECTIONS, TARGET_RATIO = 100, 0.6
BACKGROUND_WARNING = 0.2  # cores busy outside the benchmark before results are flagged


def raise_nofile_limit() -> None:
    """Soft RLIMIT_NOFILE up to the hard limit: 1000 connections need ~2000 fds."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2 :].split()  # the name in parentheses may hold spaces
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent on user, system and stolen time, all cores.

    Interrupt and softirq time are left out: loopback traffic is processed
    there, so they would count the benchmark's own packets as foreign load.
    """
    with open("/proc/stat", encoding="ascii") as f:
        ticks = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, steal = ticks[0], ticks[1], ticks[2], ticks[7]
    return (user + nice + system + steal) / os.sysconf("SC_CLK_TCK")


def welcome_frame(user: str) -> str:
    user_obj = {"id": user, "name": user, "age_band": "unknown"}
    return json.dumps({"type": "welcome", "user": user_obj}, separators=(",", ":"))


def new_event_loop() -> asyncio.AbstractEventLoop:
    import uvloop

    return uvloop.new_event_loop()


# --- echo upstream ---------------------------------------------------------------


async def _echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=1 << 20)
    await ws.prepare(request)
    await ws.send_str(welcome_frame(request.query.get("user", "anonymous")))
    async for msg in ws:  # ends when the client closes
        if msg.type is WSMsgType.TEXT:
            await ws.send_str(msg.data)
        elif msg.type is WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


async def serve_echo(port: int, lifetime: float) -> None:
    """Serve until SIGINT or SIGTERM, or for ``lifetime`` seconds at most."""
    app = web.Application()
    app.router.add_get("/ws", _echo)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, HOST, port, backlog=1024, reuse_address=True).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), lifetime)
    finally:
        await runner.cleanup()


# --- load generator --------------------------------------------------------------


@dataclass(slots=True)
class Window:
    """The phases of one measurement, as ``time.perf_counter`` instants."""

    measure_from: float
    measure_to: float
    samples: list[float] = field(default_factory=list)  # round-trip seconds, in the window
    errors: list[str] = field(default_factory=list)


Connection = tuple[aiohttp.ClientWebSocketResponse, str]  # and the user it is signed in as


async def _open(session: aiohttp.ClientSession, url: str, user: str) -> Connection:
    """Connect as ``user``, read the welcome, join the room named after the user."""
    # compress=0: no permessage-deflate, so zlib's cost does not hide the relay's.
    ws = await session.ws_connect(
        f"{url}?user={user}", autoping=True, compress=0, max_msg_size=1 << 20
    )
    welcome = await ws.receive()
    await ws.send_str(json.dumps({"type": "join", "room": user}, separators=(",", ":")))
    joined = await ws.receive()  # "joined" from the chat service, the join itself from echo
    for msg, want in ((welcome, '{"type":"welcome"'), (joined, '{"type":"')):
        if msg.type is not WSMsgType.TEXT or not msg.data.startswith(want):
            await ws.close()
            raise ConnectionError(f"unexpected frame while joining: {msg.type} {msg.data!r:.80}")
    return ws, user


async def _drive(ws: aiohttp.ClientWebSocketResponse, user: str, window: Window) -> None:
    """Closed loop: send, wait for the echo, record the round trip, repeat."""
    frame = json.dumps({"type": "message", "room": user, "text": TEXT}, separators=(",", ":"))
    send, receive, clock = ws.send_str, ws.receive, time.perf_counter
    text_kind, samples = WSMsgType.TEXT, window.samples
    measure_from, measure_to = window.measure_from, window.measure_to
    while (started := clock()) < measure_to:
        await send(frame)
        msg = await receive()
        done = clock()
        if msg.type is not text_kind or not msg.data.startswith('{"type":"message"'):
            window.errors.append(f"unexpected reply: {msg.type} {msg.data!r:.80}")
            return
        if done >= measure_from and done < measure_to:
            samples.append(done - started)


async def _open_all(
    session: aiohttp.ClientSession, url: str, connections: int, errors: list[str]
) -> list[Connection]:
    """Open connections in batches, so that no listener's accept backlog overflows."""
    users = [f"b{os.getpid()}x{i}" for i in range(connections)]  # fresh names every run
    opened: list[Connection] = []
    try:
        async with asyncio.timeout(CONNECT_BUDGET):
            for first in range(0, connections, CONNECT_BATCH):
                batch = users[first : first + CONNECT_BATCH]
                results = await asyncio.gather(
                    *(_open(session, url, u) for u in batch), return_exceptions=True
                )
                for result in results:
                    if isinstance(result, BaseException):
                        errors.append(f"connect: {type(result).__name__}: {result}")
                    else:
                        opened.append(result)
    except TimeoutError:
        errors.append(f"connect: not all connections open after {CONNECT_BUDGET} s")
    return opened


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0 for an empty one)."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


async def loadgen(
    url: str, connections: int, warmup: float, duration: float, watch: dict[str, int]
) -> dict[str, Any]:
    clock = time.perf_counter
    errors: list[str] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        opened = await _open_all(session, url, connections, errors)
        start = clock()
        window = Window(start + warmup, start + warmup + duration)
        pids = {**watch, "loadgen": os.getpid()}
        drivers = [asyncio.create_task(_drive(ws, user, window)) for ws, user in opened]
        await asyncio.sleep(window.measure_from - clock())
        busy_before = machine_busy_seconds()
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        await asyncio.sleep(window.measure_to - clock())
        cpu_after = {name: cpu_seconds(pid) for name, pid in pids.items()}
        busy = machine_busy_seconds() - busy_before
        _, stuck = await asyncio.wait(drivers, timeout=REPLY_GRACE) if drivers else ((), ())
        for task in stuck:
            task.cancel()
        if stuck:
            errors.append(f"{len(stuck)} connections got no reply within {REPLY_GRACE} s")
        await asyncio.gather(*drivers, return_exceptions=True)
        errors += [f"{type(e).__name__}: {e}" for t in drivers if (e := _exception(t))]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(REPLY_GRACE):
                await asyncio.gather(*(ws.close() for ws, _ in opened), return_exceptions=True)
    ordered = sorted(window.samples)
    cpu = {name: cpu_after[name] - cpu_before[name] for name in pids}
    return {
        "connections": connections,
        "connected": len(opened),
        "messages": len(ordered),
        "msgs_per_s": len(ordered) / duration,
        "p50_ms": percentile(ordered, 50) * 1e3,
        "p90_ms": percentile(ordered, 90) * 1e3,
        "p99_ms": percentile(ordered, 99) * 1e3,
        "max_ms": (ordered[-1] if ordered else 0.0) * 1e3,
        "cpu_s": cpu,
        # Cores kept busy by anything but these processes: other work on the machine.
        "background_cores": max(0.0, busy - sum(cpu.values())) / duration,
        "errors": (errors + window.errors)[:20],
    }


def _exception(task: asyncio.Task[None]) -> BaseException | None:
    return None if task.cancelled() else task.exception()


# --- orchestration -----------------------------------------------------------------


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Children:
    """The processes this run started; ``stop_all`` ends them by pid."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: list[subprocess.Popen[str]] = []

    def start(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        log = open(self.logs / f"{name}.log", "w", encoding="utf-8")  # noqa: SIM115
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            text=True,
            start_new_session=True,  # Ctrl-C reaches only us; we end them in order
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.logs / f"{name}.log"
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()  # SIGTERM to this pid only
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.procs.clear()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_for_port(proc: subprocess.Popen[str], port: int, name: str, children: Children) -> None:
    deadline = time.monotonic() + 20.0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{children.log_tail(name)}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1.0):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not accept connections on port {port} within 20 s")


def start_upstream(
    kind: str, children: Children, lifetime: float
) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    if kind == "echo":
        argv = [sys.executable, __file__, "--serve-echo", "--port", str(port)]
        argv += ["--lifetime", f"{lifetime:.0f}"]
    else:
        module = "chatguard_examples.chat_service"
        argv = [sys.executable, "-m", module, "--host", HOST, "--port", str(port)]
    proc = children.start(f"upstream-{kind}", argv)
    wait_for_port(proc, port, f"upstream-{kind}", children)
    return proc, port


def start_sidecar(
    upstream_port: int, workdir: Path, children: Children
) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    config = workdir / "chatguard.yaml"
    config.write_text(
        f"listen: {{host: {HOST}, port: {port}}}\n"
        "admin: {enabled: false}\n"
        f"upstream: {{url: 'ws://{HOST}:{upstream_port}'}}\n"
        "limits: {max_connections: 5000, heartbeat: 0, idle_timeout: 0, drain_timeout: 2}\n"
        f"data_dir: '{workdir / 'data'}'\n"
        "log_level: warning\n",
        encoding="utf-8",
    )
    # Environment overrides would change the measured configuration.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATGUARD__")}
    argv = [sys.executable, "-m", "chatguard", "run", "--config", str(config)]
    proc = children.start("sidecar", argv, env)
    wait_for_port(proc, port, "sidecar", children)
    return proc, port


def wait_for_quiet(limit: float, pids: Sequence[int]) -> float:
    """Wait, at most ``limit`` seconds, until other work on the machine is nearly idle.

    Samples one second at a time; returns the cores that other work kept busy
    in the last sample (below ``BACKGROUND_WARNING`` unless the limit ran out).
    """
    deadline = time.monotonic() + limit
    while True:
        started, busy, own = time.monotonic(), machine_busy_seconds(), own_cpu(pids)
        time.sleep(1.0)
        elapsed = time.monotonic() - started
        other = (machine_busy_seconds() - busy - (own_cpu(pids) - own)) / elapsed
        if other < BACKGROUND_WARNING or time.monotonic() >= deadline:
            return max(0.0, other)


def own_cpu(pids: Sequence[int]) -> float:
    return cpu_seconds(os.getpid()) + sum(cpu_seconds(pid) for pid in pids)


def measure(
    url: str, connections: int, warmup: float, duration: float, watch: dict[str, int]
) -> dict[str, Any]:
    """One load-generator process against ``url``; its JSON result."""
    argv = [sys.executable, __file__, "--loadgen", "--url", url]
    argv += ["--connections", str(connections), "--warmup", str(warmup)]
    argv += ["--duration", str(duration)]
    argv += [f"--watch={name}={pid}" for name, pid in watch.items()]
    limit = CONNECT_BUDGET + warmup + duration + 3 * REPLY_GRACE + 15.0
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    try:
        out, err = proc.communicate(timeout=limit)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode}):\n{err[-2000:]}")
    result: dict[str, Any] = json.loads(out)
    return result


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def summarise(
    upstream: str, connections: int, duration: float, runs: list[dict[str, Any]]
) -> dict[str, Any]:
    by_mode = {m: [r for r in runs if r["mode"] == m] for m in ("direct", "sidecar")}
    row: dict[str, Any] = {"upstream": upstream, "connections": connections}
    for mode, results in by_mode.items():
        for key in ("msgs_per_s", "p50_ms", "p99_ms"):
            row[f"{mode}_{key}"] = median([r[key] for r in results])
        # Near 1.0 means that process is saturated: it, not the relay, sets the pace.
        for name in ("upstream", "sidecar", "loadgen"):
            row[f"{mode}_{name}_cores"] = median([r["cpu_s"][name] / duration for r in results])
    direct = row["direct_msgs_per_s"]
    row["ratio"] = row["sidecar_msgs_per_s"] / direct if direct else 0.0
    sidecar = [r for r in by_mode["sidecar"] if r["messages"]]
    row["sidecar_cpu_s_per_100k"] = median(
        [r["cpu_s"]["sidecar"] / r["messages"] * 100_000 for r in sidecar]
    )
    row["background_cores_median"] = median([r["background_cores"] for r in runs])
    row["background_cores_max"] = max((r["background_cores"] for r in runs), default=0.0)
    row["errors"] = sum(len(r["errors"]) for r in runs)
    return row


def print_table(rows: list[dict[str, Any]], args: argparse.Namespace, out: TextIO) -> None:
    head = (
        "connections",
        "direct msg/s",
        "sidecar msg/s",
        "ratio",
        "direct p50/p99 ms",
        "sidecar p50/p99 ms",
        "sidecar CPU s/100k msgs",
    )
    for upstream in dict.fromkeys(r["upstream"] for r in rows):
        print(
            f"\nupstream: {upstream}, {UPSTREAMS[upstream]}; pipeline: pass-through; "
            f"{args.runs} run(s) per cell, medians; {args.warmup:g} s warm-up + "
            f"{args.duration:g} s measured; {os.cpu_count()} CPUs",
            file=out,
        )
        print("| " + " | ".join(head) + " |", file=out)
        print("|" + "|".join("-" * (len(h) + 2) for h in head) + "|", file=out)
        for r in (r for r in rows if r["upstream"] == upstream):
            cells = (
                f"{r['connections']}",
                f"{r['direct_msgs_per_s']:,.0f}",
                f"{r['sidecar_msgs_per_s']:,.0f}",
                f"{r['ratio']:.2f}",
                f"{r['direct_p50_ms']:.2f} / {r['direct_p99_ms']:.2f}",
                f"{r['sidecar_p50_ms']:.2f} / {r['sidecar_p99_ms']:.2f}",
                f"{r['sidecar_cpu_s_per_100k']:.2f}",
            )
            print("| " + " | ".join(cells) + " |", file=out)
        for r in (r for r in rows if r["upstream"] == upstream):
            notes = []
            if r["connections"] == TARGET_CONNECTIONS:
                met = "met" if r["ratio"] >= TARGET_RATIO else "NOT met"
                notes.append(f"target ratio >= {TARGET_RATIO} at {TARGET_CONNECTIONS}: {met}")
            if r["background_cores_max"] > BACKGROUND_WARNING:
                notes.append(
                    f"other work on the machine: up to {r['background_cores_max']:.2f} cores"
                    " busy during these runs; numbers are provisional"
                )
            if r["errors"]:
                notes.append(f"{r['errors']} errors; see --json")
            if notes:
                print(f"  connections={r['connections']}: " + "; ".join(notes), file=out)
    print(
        "\nmsg/s: round trips per second (client -> upstream -> same client); "
        "ratio: sidecar/direct msg/s;\nCPU: sidecar user+system seconds per 100k round "
        "trips (each is two relayed frames).",
        file=out,
    )


def progress_line(result: dict[str, Any]) -> str:
    line = (
        f"{result['upstream']:>7} {result['mode']:>7} {result['connections']:>5} conns "
        f"run {result['run'] + 1}: {result['msgs_per_s']:>8,.0f} msg/s  "
        f"p50 {result['p50_ms']:.2f} ms  p99 {result['p99_ms']:.2f} ms  "
        f"other load {result['background_cores']:.2f} cores"
    )
    return line + (f"  errors: {result['errors'][0]}" if result["errors"] else "")


def measure_upstream(
    upstream: str, args: argparse.Namespace, workdir: Path, progress: TextIO
) -> list[dict[str, Any]]:
    """Every connection count and run against one upstream kind, direct and via the sidecar."""
    children = Children(workdir)
    # Generous: connecting, closing and process start-up come on top.
    per_run = args.settle + args.warmup + args.duration + 30.0
    lifetime = len(args.connections) * args.runs * 2 * per_run + 120.0
    results: list[dict[str, Any]] = []
    try:
        up_proc, up_port = start_upstream(upstream, children, lifetime)
        sc_proc, sc_port = start_sidecar(up_port, workdir, children)
        urls = {"direct": f"ws://{HOST}:{up_port}/ws", "sidecar": f"ws://{HOST}:{sc_port}/ws"}
        watch = {"upstream": up_proc.pid, "sidecar": sc_proc.pid}
        for connections in args.connections:
            for run in range(args.runs):
                # Alternate the order so that drift on the machine hits both modes.
                for mode in ("direct", "sidecar")[:: 1 if run % 2 == 0 else -1]:
                    if args.settle > 0:
                        wait_for_quiet(args.settle, list(watch.values()))
                    result = measure(urls[mode], connections, args.warmup, args.duration, watch)
                    result.update(upstream=upstream, mode=mode, run=run)
                    results.append(result)
                    print(progress_line(result), file=progress, flush=True)
                    time.sleep(0.5)  # let the closing handshakes finish
    finally:
        children.stop_all()
    return results


def run_benchmark(args: argparse.Namespace, progress: TextIO) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="chatguard-bench-") as tmp:
        for upstream in args.upstream:
            measured = measure_upstream(upstream, args, Path(tmp), progress)
            results += measured
            for connections in args.connections:
                cell = [r for r in measured if r["connections"] == connections]
                rows.append(summarise(upstream, connections, args.duration, cell))
    return {
        "date": time.strftime("%Y-%m-%d"),
        "cpus": os.cpu_count(),
        "pipeline": "pass-through",
        "runs": args.runs,
        "warmup_s": args.warmup,
        "duration_s": args.duration,
        "summary": rows,
        "results": results,
    }


def _connections(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or any(v < 1 or v > 5000 for v in values):
        raise argparse.ArgumentTypeError("give counts between 1 and 5000, e.g. 1,100,1000")
    return values


def _upstreams(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values or any(v not in UPSTREAMS for v in values):
        raise argparse.ArgumentTypeError(f"choose from {', '.join(UPSTREAMS)}, comma-separated")
    return values


def _watch(text: str) -> tuple[str, int]:
    name, _, pid = text.partition("=")
    return name, int(pid)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Relay benchmark: direct vs through the ChatGuard sidecar."
    )
    parser.add_argument(
        "--connections",
        type=_connections,
        default=[1, 100, 1000],
        help="connection counts, comma-separated (default 1,100,1000)",
    )
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    parser.add_argument("--runs", type=int, default=3, help="repeats per cell (medians)")
    parser.add_argument(
        "--upstream",
        type=_upstreams,
        default=["echo"],
        help="echo (isolates the relay's cost; default), example, or echo,example",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=10.0,
        help="before each run, wait up to this many seconds for other work on the machine "
        "to stop (0: do not wait)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke check: 1 run, 0.3 s warm-up, 1 s measured, settle <= 2 s",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    # Roles of the child processes.
    parser.add_argument("--loadgen", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-echo", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--lifetime", type=float, default=3600.0, help=argparse.SUPPRESS)
    parser.add_argument("--watch", type=_watch, action="append", default=[], help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    raise_nofile_limit()
    if args.serve_echo:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(serve_echo(args.port, args.lifetime))
        return 0
    if args.loadgen:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            result = runner.run(
                loadgen(args.url, args.connections[0], args.warmup, args.duration, dict(args.watch))
            )
        print(json.dumps(result))
        return 0
    if args.quick:
        args.runs, args.warmup, args.duration, args.settle = 1, 0.3, 1.0, min(args.settle, 2.0)
    if args.runs < 1 or args.duration <= 0 or args.warmup < 0 or args.settle < 0:
        raise SystemExit("--runs must be >= 1, --duration > 0, --warmup and --settle >= 0")
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # so that cleanup runs
    try:
        report = run_benchmark(args, sys.stderr)
    except KeyboardInterrupt:
        print("relay benchmark: interrupted; child processes stopped", file=sys.stderr)
        return 130
    except (RuntimeError, OSError, subprocess.TimeoutExpired, ValueError) as exc:
        print(f"relay benchmark: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report["summary"], args, sys.stdout)
    return 0


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())
