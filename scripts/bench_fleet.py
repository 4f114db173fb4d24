"""``make bench-fleet``: the drift sweep over a fleet, planned by the timer, worked from the queue.

For each size (pairs; one cluster and its registry per pair, over ``--subscriptions``) it:

- builds the estate in the emulator, which then enforces ARM's token buckets (250 + 25/s reads,
  200 + 10/s writes, per principal per subscription; 429 with ``Retry-After`` and the
  ``x-ms-ratelimit-remaining-subscription-*`` headers) and answers every request after
  ``--latency`` seconds;
- starts Azurite's Table service (the state store) and Queue service (``sweep-batches``,
  ``sweep-handover``), runs the planner (the ``drift_sweep`` timer's work) and ``--workers``
  worker processes that consume both queues as Function App instances would (``host.json``'s
  ``batchSize`` + ``newBatchThreshold`` messages at a time, a failed message visible again after
  its visibility timeout, poison after ``maxDequeueCount``);
- prints wall time, requests by kind and per pair, 429s, the bound ARM's limits put on those
  requests, and the ratio measured / bound.

The bound: per subscription, reads / 25 per second and writes / 10 per second (ARM's refill
rates; the burst is not credited, so the bound holds for a sweep that runs every hour), the
largest over subscriptions and kinds. A sweep cannot finish sooner without fewer requests.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger(__name__)
BATCHES, HANDOVER = "sweep-batches", "sweep-handover"
REGISTRIES_PER_SUBSCRIPTION = 2
READ_RATE, WRITE_RATE = 25.0, 10.0
READ_BURST, WRITE_BURST = 250, 200
# As the host does: a message being processed is kept invisible (renewed while it runs); a failed
# one comes back after a retry delay (host.json's visibilityTimeout, 2 minutes; shorter here so a
# storm converges within a bench), and goes to <queue>-poison after maxDequeueCount attempts.
VISIBILITY_SECONDS = 20
RETRY_SECONDS = 3
MAX_DEQUEUE = 10


@dataclass
class Result:
    pairs: int
    subscriptions: int
    workers: int
    build_seconds: float
    wall_seconds: float
    requests: Counter[str]
    per_subscription: dict[str, Counter[str]]
    throttled: int  # 429s answered (ARM's buckets and injected storms)
    bucket_throttled: int  # of which ARM's buckets
    checked: int
    lost: int
    longest_invocation: float
    peak_rss_mb: float
    batches: int
    handovers: int
    table_requests: int
    table_reads: int
    table_methods: Counter[str]
    rebatched_or_handed_over: int
    shapes: Counter[str] = field(default_factory=Counter)  # ARM requests by method and type
    # CPU seconds during the sweep: this process (the emulator and Azurite's clients) and the
    # planner and workers together; against wall time they say what the machine was busy with.
    emulator_cpu: float = 0.0
    workers_cpu: float = 0.0

    @property
    def bound(self) -> float:
        return max(
            (max(c["reads"] / READ_RATE, c["writes"] / WRITE_RATE))
            for c in self.per_subscription.values()
        )

    @property
    def bound_with_burst(self) -> float:
        """The bound when every bucket starts full (a sweep after a quiet hour)."""
        return max(
            max(
                max(0, c["reads"] - READ_BURST) / READ_RATE,
                max(0, c["writes"] - WRITE_BURST) / WRITE_RATE,
            )
            for c in self.per_subscription.values()
        )

    @property
    def ratio(self) -> float:
        return self.wall_seconds / self.bound if self.bound else float("inf")


# -- the estate -----------------------------------------------------------------------------------


def subscription_id(index: int) -> str:
    return f"5b0c0000-0000-4000-8000-{index:012d}"


def fleet_spec(pairs: int, subscriptions: int) -> dict[str, Any]:
    """Healthy pairs: each cluster attached to one registry of its subscription, running one
    image from it (the shape of most of a real fleet, where the sweep's cost lies)."""
    spec: dict[str, Any] = {"subscriptions": []}
    for s in range(subscriptions):
        count = pairs // subscriptions + (1 if s < pairs % subscriptions else 0)
        registries = [f"acrfleet{s}r{r}" for r in range(REGISTRIES_PER_SUBSCRIPTION)]
        clusters = []
        for i in range(count):
            registry = registries[i % len(registries)]
            clusters.append(
                {
                    "name": f"aks-{s}-{i:04d}",
                    "nodePools": [
                        {
                            "name": "system",
                            "vmSize": "Standard_D4s_v5",
                            "count": 2,
                            "mode": "System",
                        }
                    ],
                    "attachedRegistries": [registry],
                    "workloads": [
                        {
                            "namespace": "default",
                            "name": "api",
                            "image": f"{registry}.azurecr.io/app:v1",
                            "nodeSelector": {"kubernetes.io/os": "linux"},
                        }
                    ],
                }
            )
        spec["subscriptions"].append(
            {
                "id": subscription_id(s),
                "name": f"fleet-{s}",
                "resourceGroups": [
                    {
                        "name": "rg-acr",
                        "location": "westeurope",
                        "registries": [
                            {
                                "name": name,
                                "sku": "Premium",
                                "repositories": {"app": {"v1": ["linux/amd64"]}},
                            }
                            for name in registries
                        ],
                    },
                    {"name": "rg-aks", "location": "westeurope", "clusters": clusters},
                ],
            }
        )
    return spec


# -- the run --------------------------------------------------------------------------------------


def run(
    pairs: int,
    *,
    subscriptions: int,
    workers: int,
    latency: float,
    limits: Any = None,
    faults: Callable[[Any], None] | None = None,
    quiet: bool = False,
    settings: dict[str, str] | None = None,
) -> Result:
    """One sweep of a fleet of ``pairs`` pairs; ``faults`` may inject more (the storm tests)."""
    from emulator import scenario
    from emulator.azurite import Azurite
    from emulator.server import Emulator
    from emulator.throttling import ArmLimits, Buckets

    say = (lambda *_: None) if quiet else (lambda *a: print(*a, flush=True))
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp, Emulator() as emulator:
        started = time.perf_counter()
        scenario.load(emulator.state, fleet_spec(pairs, subscriptions))
        build = time.perf_counter() - started
        say(f"  built {pairs} pairs in {subscriptions} subscriptions in {build:.1f} s")
        table_log = Path(tmp) / "table.log"
        with Azurite(debug_log=table_log) as tables, Azurite(service="queue") as queues:
            env = {**_environment(emulator, tables, queues, subscriptions), **(settings or {})}
            _create_queues(queues.connection_string)
            emulator.state.arm_buckets = Buckets(limits or ArmLimits())
            if latency:
                emulator.inject(".*", latency=latency)
            if faults is not None:
                faults(emulator)
            emulator.clear_journal()
            baseline = _table_requests(table_log)
            out = Path(tmp)
            cpu = _cpu()
            started = time.perf_counter()
            planner = _spawn("planner", env, out / "planner.jsonl")
            pool = [_spawn("worker", env, out / f"worker{i}.jsonl") for i in range(workers)]
            try:
                if planner.wait(600) != 0:
                    raise RuntimeError(f"the planner failed: {_tail(out / 'planner.jsonl.err')}")
                _wait_until_drained(queues.connection_string, pool, out)
                wall = time.perf_counter() - started
            finally:
                for process in pool:
                    _stop(process)
            emulator_cpu, workers_cpu = (now - then for now, then in zip(_cpu(), cpu, strict=True))
            records = [r for i in range(workers) for r in _records(out / f"worker{i}.jsonl")]
            errors = Counter(str(r["error"])[:160] for r in records if r.get("error"))
            for error, count in errors.most_common(5):
                say(f"  {count} failed invocations (retried by the queue): {error}")
            verdicts = Counter(o[1] for r in records for o in r.get("outcomes", []))
            say(f"  outcomes: {dict(verdicts)}")
            for r in records:
                for cluster, verdict, _findings, reason in r.get("outcomes", []):
                    if verdict != "healthy":
                        say(f"  {cluster.rsplit('/', 1)[-1]}: {verdict}: {reason[:200]}")
            return _result(
                emulator,
                records,
                pairs=pairs,
                subscriptions=subscriptions,
                workers=workers,
                build_seconds=build,
                wall_seconds=wall,
                tables=_table_requests(table_log) - baseline,
                lost=_poisoned(queues.connection_string),
                emulator_cpu=emulator_cpu,
                workers_cpu=workers_cpu,
            )


def _environment(emulator: Any, tables: Any, queues: Any, subscriptions: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_"))}
    env.update(emulator.environment())
    env.update(tables.environment(table_prefix="bench"))
    env.update(
        {
            "SCOPE_SUBSCRIPTION_IDS": ",".join(subscription_id(s) for s in range(subscriptions)),
            # Kubernetes reads need the user credential, which only enforce mode holds; the
            # estate is healthy, so nothing is changed.
            "REMEDIATION_MODE": "enforce",
            "POLICY_PATH": "",
            "SWEEP_BUDGET_SECONDS": "240",
            "BENCH_QUEUES": queues.connection_string,
            # The caller's path after the project's (a profiler's sitecustomize, say).
            "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))),
        }
    )
    return env


def _cpu() -> tuple[float, float]:
    """(this process's CPU seconds, its finished children's)."""
    mine = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime, children.ru_utime + children.ru_stime


def _create_queues(connection: str) -> None:
    from azure.storage.queue import QueueClient

    for name in (BATCHES, HANDOVER, f"{BATCHES}-poison", f"{HANDOVER}-poison"):
        QueueClient.from_connection_string(connection, name).create_queue()


def _spawn(role: str, env: dict[str, str], out: Path) -> subprocess.Popen[bytes]:
    err = out.with_suffix(out.suffix + ".err").open("wb")
    return subprocess.Popen(  # noqa: S603 (this script, in this interpreter)
        [sys.executable, "-m", "scripts.bench_fleet", "--role", role, "--out", str(out)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=err,
    )


def _wait_until_drained(connection: str, pool: list[subprocess.Popen[bytes]], out: Path) -> None:
    """Both queues empty (ApproximateMessageCount counts invisible messages too) twice in a row."""
    from azure.storage.queue import QueueClient

    clients = [QueueClient.from_connection_string(connection, q) for q in (BATCHES, HANDOVER)]
    empty = 0
    deadline = time.monotonic() + 3600
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in pool):
            raise RuntimeError(f"a worker died: {_tail(out / 'worker0.jsonl.err')}")
        counts = [c.get_queue_properties().approximate_message_count for c in clients]
        empty = empty + 1 if not any(counts) else 0
        if empty >= 2:
            return
        time.sleep(1.0)  # each look costs the emulator's process two Azurite requests
    raise RuntimeError("the queues never drained")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _poisoned(connection: str) -> int:
    from azure.storage.queue import QueueClient

    return sum(
        QueueClient.from_connection_string(connection, q)
        .get_queue_properties()
        .approximate_message_count
        for q in (f"{BATCHES}-poison", f"{HANDOVER}-poison")
    )


def _table_requests(log: Path) -> Counter[str]:
    """Requests Azurite's Table service logged by method (its --debug log names each one's)."""
    found = Counter[str]()
    if not log.exists():
        return found
    marker = b"TableStorageContextMiddleware: RequestMethod="
    with log.open("rb") as text:
        for line in text:
            at = line.find(marker)
            if at >= 0:
                found[line[at + len(marker) :].split(b" ", 1)[0].decode()] += 1
    return found


def _records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else "(no output)"


def _result(
    emulator: Any, records: list[dict[str, Any]], *, tables: Counter[str], **values: Any
) -> Result:
    requests, per_subscription, shapes = Counter[str](), {}, Counter[str]()
    for entry in emulator.journal():
        kind = _kind(entry.service, entry.method, entry.path)
        if kind is None:
            continue
        requests[kind] += 1
        if kind in ("reads", "writes"):
            shapes[_shape(entry.method, entry.path)] += 1
        if kind in ("reads", "writes") and entry.path.lower().startswith("/subscriptions/"):
            sub = entry.path.split("/")[2].lower()
            per_subscription.setdefault(sub, Counter())[kind] += 1
    checked = {
        cluster
        for r in records
        for cluster, verdict, findings, _reason in r.get("outcomes", [])
        if findings >= 10 and verdict == "healthy"
    }
    buckets = emulator.state.arm_buckets.throttled if emulator.state.arm_buckets else 0
    return Result(
        requests=requests,
        shapes=shapes,
        per_subscription=per_subscription,
        throttled=sum(1 for e in emulator.journal() if e.status == 429),
        bucket_throttled=buckets,
        checked=len(checked),
        longest_invocation=max((r["seconds"] for r in records), default=0.0),
        peak_rss_mb=max((r.get("rss_mb", 0.0) for r in records), default=0.0),
        table_requests=sum(tables.values()),
        table_reads=tables["GET"],
        table_methods=tables,
        rebatched_or_handed_over=sum(r.get("again", 0) for r in records),
        batches=sum(1 for r in records if r["queue"] == BATCHES),
        handovers=sum(1 for r in records if r["queue"] == HANDOVER),
        **values,
    )


def _shape(method: str, path: str) -> str:
    """``GET Microsoft.ContainerService/managedClusters/listClusterUserCredential``: names dropped."""
    lowered = path.lower()
    marker = lowered.rfind("/providers/")
    if marker < 0:
        return f"{method} {'/'.join(path.split('/')[3::2]) or path}"
    parts = path[marker + len("/providers/") :].split("/")
    namespace, rest = parts[0], parts[1:]
    names = rest[0::2] + ([rest[-1]] if method == "POST" and len(rest) % 2 == 1 else [])
    return f"{method} {namespace}/{'/'.join(dict.fromkeys(names))}"


def _kind(service: str, method: str, path: str) -> str | None:
    if service == "arm":
        if "/providers/microsoft.resourcegraph/" in path.lower():
            return "resource graph"
        return "reads" if method in ("GET", "HEAD") else "writes"
    return {"kubernetes": "kubernetes", "graph": "graph"}.get(service)


# -- the processes --------------------------------------------------------------------------------


def planner(out: Path) -> int:
    """The drift_sweep timer: plan, and send each batch as soon as it is known."""
    from azure.storage.queue import QueueClient

    from shared.runtime import plan_sweep

    queue = QueueClient.from_connection_string(os.environ["BENCH_QUEUES"], BATCHES)
    started = time.perf_counter()
    plan_sweep("drift", source="drift_sweep", emit=queue.send_message)
    _write(out, {"queue": "timer", "seconds": time.perf_counter() - started, "outcomes": []})
    return 0


def worker(out: Path) -> int:
    """One Function App instance, until SIGTERM."""
    instance = _Instance(out)
    signal.signal(signal.SIGTERM, lambda *_: instance.stop.set())
    instance.serve()
    return 0


class _Instance:
    """What the Functions host does with the two queue triggers of one instance: up to
    host.json's batchSize + newBatchThreshold invocations at once, each message kept invisible
    while it runs, deleted when it succeeded, back after a delay when it failed, poison after
    maxDequeueCount attempts."""

    def __init__(self, out: Path) -> None:
        from azure.storage.queue import QueueClient

        host = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))["extensions"]
        queues = host["queues"]
        self.parallel = int(queues.get("batchSize", 16)) + int(queues.get("newBatchThreshold", 8))
        connection = os.environ["BENCH_QUEUES"]
        self.queues = {
            q: QueueClient.from_connection_string(connection, q) for q in (BATCHES, HANDOVER)
        }
        self.poison = {
            q: QueueClient.from_connection_string(connection, f"{q}-poison") for q in self.queues
        }
        self.out = out
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.leases: dict[str, list[Any]] = {}  # message id -> [queue, message (pop receipt)]
        logging.basicConfig(level=logging.WARNING)
        self.capture = _OutcomeCapture()
        logging.getLogger("shared.runtime").addHandler(self.capture)
        logging.getLogger("shared.runtime").setLevel(logging.INFO)

    def serve(self) -> None:
        threading.Thread(target=self._renew, daemon=True).start()
        with ThreadPoolExecutor(self.parallel, thread_name_prefix="invocation") as pool:
            running: set[Any] = set()
            while not self.stop.is_set():
                running = {f for f in running if not f.done()}
                room, got = self.parallel - len(running), 0
                for name in (HANDOVER, BATCHES):
                    if room <= 0:
                        break
                    for message in self.queues[name].receive_messages(
                        max_messages=min(room, 32), visibility_timeout=VISIBILITY_SECONDS
                    ):
                        with self.lock:
                            self.leases[message.id] = [name, message]
                        running.add(pool.submit(self._invoke, name, message))
                        room, got = room - 1, got + 1
                if not got:
                    self.stop.wait(0.2)

    def _renew(self) -> None:
        """Keep running messages invisible. Under the lock: a message is renewed or settled,
        never both at once (each needs the other's newest pop receipt)."""
        from azure.core.exceptions import HttpResponseError

        while not self.stop.wait(VISIBILITY_SECONDS / 4):
            with self.lock:
                for name, message in self.leases.values():
                    try:
                        renewed = self.queues[name].update_message(
                            message, visibility_timeout=VISIBILITY_SECONDS
                        )
                    except HttpResponseError as exc:
                        log.warning("could not renew message %s: %s", message.id, exc.reason)
                        continue
                    message.pop_receipt = renewed.pop_receipt

    def _settle(self, name: str, message: Any, *, failed: bool) -> None:
        with self.lock:
            self.leases.pop(message.id, None)
            self._finish(name, message, failed=failed)

    def _finish(self, name: str, message: Any, *, failed: bool) -> None:
        if not failed:
            self.queues[name].delete_message(message)
        elif message.dequeue_count >= MAX_DEQUEUE:
            self.poison[name].send_message(message.content)
            self.queues[name].delete_message(message)
        else:
            self.queues[name].update_message(message, visibility_timeout=RETRY_SECONDS)

    def _invoke(self, name: str, message: Any) -> None:
        from shared.runtime import handle_batch, handle_handover

        started = time.perf_counter()
        self.capture.start()
        error, again = None, 0
        try:
            if name == BATCHES:
                batches, rest = handle_batch(message.content)
                again = len(batches) + len(rest)
                for body in batches:
                    self.queues[BATCHES].send_message(body)
                for body in rest:
                    self.queues[HANDOVER].send_message(body)
            else:
                handle_handover(message.content)
        except Exception as exc:  # the host fails the invocation: the message comes back
            error = f"{type(exc).__name__}: {exc}"[:300]
        self._settle(name, message, failed=error is not None)
        record = {
            "queue": name,
            "seconds": time.perf_counter() - started,
            "outcomes": self.capture.stop(),
            "error": error,
            "again": again + (1 if error else 0),
            "rss_mb": _peak_rss_mb(),
        }
        with self.lock:
            _write(self.out, record)


def _peak_rss_mb() -> float:
    """This process's own peak resident memory. Not ``ru_maxrss``: Linux keeps it across
    fork and exec, so a worker would report the bench process's size at its spawn (which
    grows with the estate) instead of its own; ``VmHWM`` is the new program's."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _OutcomeCapture(logging.Handler):
    """The outcomes this thread's invocation logged: (cluster, verdict, findings)."""

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()

    def start(self) -> None:
        self._local.found = []

    def stop(self) -> list[Any]:
        found: list[Any] = getattr(self._local, "found", [])
        self._local.found = None
        return found

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        found = getattr(self._local, "found", None)
        if found is None or not message.startswith("outcome "):
            return
        outcome = json.loads(message[len("outcome ") :])
        found.append(
            [outcome["cluster"], outcome["verdict"], len(outcome["findings"]), outcome["reason"]]
        )


def _write(path: Path, record: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")


# -- printing -------------------------------------------------------------------------------------


def table(results: list[Result]) -> str:
    lines = [
        "| pairs | subscriptions | workers | wall s | ARM bound s | measured / bound | ARM reads / pair "
        "| ARM writes / pair | Resource Graph / pair | Kubernetes / pair | Graph / pair "
        "| Table / pair | 429s | checked | lost | longest invocation s | peak RSS MB |",
        "|" + "---|" * 17,
    ]
    for r in results:
        per = {k: r.requests[k] / r.pairs for k in ("reads", "writes", "resource graph")}
        lines.append(
            f"| {r.pairs:,} | {r.subscriptions} | {r.workers} | {r.wall_seconds:.1f} "
            f"| {r.bound:.1f} | {r.ratio:.2f} | {per['reads']:.2f} | {per['writes']:.2f} "
            f"| {per['resource graph']:.2f} | {r.requests['kubernetes'] / r.pairs:.1f} "
            f"| {r.requests['graph'] / r.pairs:.2f} | {r.table_requests / r.pairs:.2f} "
            f"| {r.throttled} | {r.checked:,} | {r.lost} | {r.longest_invocation:.1f} "
            f"| {r.peak_rss_mb:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[100, 1000])
    parser.add_argument("--subscriptions", type=int, default=5)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.03)
    parser.add_argument("--role", choices=("planner", "worker"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "planner":
        return planner(args.out)
    if args.role == "worker":
        return worker(args.out)
    results = []
    for size in args.sizes:
        print(
            f"{size} pairs, {args.subscriptions} subscriptions, {args.workers} workers, "
            f"{args.latency * 1000:.0f} ms per request",
            flush=True,
        )
        result = run(
            size, subscriptions=args.subscriptions, workers=args.workers, latency=args.latency
        )
        results.append(result)
        print(table([result]).splitlines()[-1], flush=True)
    print()
    print(table(results))
    for result in results:
        shapes = ", ".join(f"{k} {v / result.pairs:.2f}" for k, v in result.shapes.most_common(8))
        print(f"{result.pairs:,} pairs, ARM requests per pair by kind: {shapes}")
        methods = ", ".join(f"{k} {v / result.pairs:.2f}" for k, v in result.table_methods.items())
        print(f"{result.pairs:,} pairs, Table requests per pair by method: {methods}")
        if result.bound_with_burst > 0:
            burst = (
                f"{result.bound_with_burst:.1f} s (measured / that: "
                f"{result.wall_seconds / result.bound_with_burst:.2f})"
            )
        else:
            burst = "0 s (every subscription's requests fit in its burst)"
        print(f"{result.pairs:,} pairs, the bound with full buckets at the start: {burst}")
        print(
            f"{result.pairs:,} pairs, CPU during the sweep: emulator {result.emulator_cpu:.0f} s, "
            f"planner and workers {result.workers_cpu:.0f} s, in {result.wall_seconds:.0f} s "
            f"of wall time on {os.cpu_count()} CPUs"
        )
    incomplete = [r for r in results if r.checked != r.pairs or r.lost]
    return 1 if incomplete else 0


if __name__ == "__main__":
    sys.exit(main())
