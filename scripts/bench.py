"""``make bench``: requests and wall time of one diagnosis, optimized vs sequential and uncached.

Every emulator request gets 50 ms of injected latency, as a rough stand-in for ARM from an Azure
region. The optimized run is what the product does (a per-run read cache and bounded concurrent
checks); the baseline runs the same checks one after another with every read going to Azure.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from emulator import scenario
from emulator.server import Emulator
from shared.azure.cache import RunCache
from shared.azure.estate import ArmEstate
from shared.azure.factory import ClientFactory
from shared.checks import CHECKS, Target
from shared.config import Settings
from shared.engine import Engine

R = TypeVar("R")
LATENCY = 0.05
ROUNDS = 3
SCENARIO = "demo"
# A managed-identity cluster, and a service-principal cluster (Graph reads too), of the demo estate.
PAIRS = (("aks-healthy", "acrdemoweu"), ("aks-pullsp", "acrdemoweu"))


class NoCache(RunCache):
    """The baseline: every read goes to Azure."""

    def get_or_load(self, key: Hashable, load: Callable[[], R]) -> R:
        return load()


def run(
    emulator: Emulator,
    settings: Settings,
    factory: ClientFactory,
    pair: tuple[str, str],
    *,
    optimized: bool,
) -> tuple[float, Counter[str]]:
    estate = ArmEstate(factory)
    if not optimized:
        estate.cache = NoCache()
    engine = Engine(settings if optimized else _sequential(settings), estate)
    cluster_id = scenario.find_cluster(emulator.state, pair[0])["id"]
    registry_id = scenario.find_registry(emulator.state, pair[1])["id"]
    image = f"{pair[1]}.azurecr.io/app:v1"
    emulator.clear_journal()
    started = time.perf_counter()
    findings = engine.diagnose(Target(estate.get_cluster(cluster_id), registry_id, image))
    elapsed = time.perf_counter() - started
    assert len(findings) == len(CHECKS)
    counts = Counter(e.service for e in emulator.journal() if e.service != "identity")
    return elapsed, counts


def _sequential(settings: Settings) -> Settings:
    from dataclasses import replace

    return replace(settings, max_concurrency=1)


def classifier() -> None:
    """The classifier on hostile 1 MB messages (alert webhook bodies can be that large) and its
    accuracy and time per message on the corpus of real pull errors (tests/unit/corpus/)."""
    from pathlib import Path

    import yaml

    from shared.classify import FAMILIES, UNKNOWN, classify

    hostile = [
        "Failed to pull image " + '"' * 1_000_000,
        "rpc error: " * 90_000,
        "no match for platform in manifest " + "a" * 1_000_000,
        "x" * 1_000_000,
        "\\\\u0027" * 150_000,
        "<html>" + "<title>" * 150_000,
        "unexpected status from GET request to " + "a" * 1_000_000,
    ]
    timings = []
    for message in hostile:
        started = time.perf_counter()
        classify(message)
        timings.append(time.perf_counter() - started)
    print(
        f"classify, 1 MB hostile messages: worst {max(timings) * 1000:.1f} ms, median {statistics.median(timings) * 1000:.1f} ms"
    )
    corpus_file = Path(__file__).resolve().parent.parent / "tests/unit/corpus/pull_errors.yaml"
    corpus = yaml.safe_load(corpus_file.read_text(encoding="utf-8"))
    total, hits = Counter[str](), Counter[str]()
    started = time.perf_counter()
    for _ in range(ROUNDS):
        for entry in corpus:
            cause = classify(entry["message"]).cause
            total[entry["family"]] += 1
            hits[entry["family"]] += cause == entry["family"]
    per_message = (time.perf_counter() - started) / (ROUNDS * len(corpus))
    rows = ", ".join(f"{f} {hits[f] // ROUNDS}/{total[f] // ROUNDS}" for f in (*FAMILIES, UNKNOWN))
    print(
        f"classify, corpus of {len(corpus)} real messages: {sum(hits.values()) / sum(total.values()):.1%} "
        f"right ({rows}), {per_message * 1e6:.0f} us per message"
    )


RUN_COMMAND_LATENCY = 8.0


# A diagnosis only reads; it reads what an operator's own run (the CLI) reads, kubeconfigs and
# Run Command included. Without it a bench outside the tests' fixtures ran in the default
# dry-run access mode, which lists no credential: no Kubernetes read, no Run Command, and a
# bench that measured less than the product does.
READ_EVERYTHING = {"CREDENTIAL_READS": "on"}


def run_command_bench(latency: float = RUN_COMMAND_LATENCY) -> dict[str, tuple[int, float]]:
    """A private cluster's diagnosis (kubernetes-pulls, made private) with the emulator's Run
    Command taking ``latency`` seconds: Run Command calls and wall time, reads only and with the
    node pull probe. Goal: 1 call for all reads, 1 more for the probe."""
    from emulator import kubernetes as k8s

    results: dict[str, tuple[int, float]] = {}
    for label, probe in (("reads", False), ("reads + probe", True)):
        with Emulator() as emulator:
            scenario.load(emulator.state, "kubernetes-pulls")
            cluster = scenario.find_cluster(emulator.state, "aks-shop-weu")
            cluster["properties"]["apiServerAccessProfile"] = {"enablePrivateCluster": True}
            emulator.state.put(cluster)
            k8s.set_reachable(emulator.state, cluster["id"], False)
            emulator.state.run_command_latency = latency
            saved = dict(os.environ)
            # The managed identity credential reads IDENTITY_ENDPOINT and the CA from os.environ.
            os.environ.update(emulator.environment())
            env = {
                **os.environ,
                **READ_EVERYTHING,
                "SCOPE_SUBSCRIPTION_IDS": ",".join(emulator.state.subscriptions),
            }
            settings = Settings.from_env(env)
            estate = ArmEstate(ClientFactory(settings))
            engine = Engine(settings, estate, probe=lambda _, on=probe: on)
            registry_id = scenario.find_registry(emulator.state, "acrshopweu")["id"]
            target = Target(estate.get_cluster(cluster["id"]), registry_id)
            emulator.clear_journal()
            started = time.perf_counter()
            engine.diagnose(target)
            elapsed = time.perf_counter() - started
            calls = [e for e in emulator.journal("arm") if e.path.endswith("/runCommand")]
            results[label] = (len(calls), elapsed)
            os.environ.clear()
            os.environ.update(saved)
    return results


def main() -> int:
    classifier()
    print(f"private cluster, Run Command latency {RUN_COMMAND_LATENCY:.0f} s (emulator)")
    for label, (calls, elapsed) in run_command_bench().items():
        print(f"  {label:<14} {calls} Run Command call(s) per cluster diagnosis, {elapsed:.1f} s")
    with Emulator() as emulator:
        scenario.load(emulator.state, SCENARIO)
        os.environ.update(emulator.environment())
        subscriptions = ",".join(sorted(emulator.state.subscriptions))
        settings = Settings.from_env(
            {**os.environ, **READ_EVERYTHING, "SCOPE_SUBSCRIPTION_IDS": subscriptions}
        )
        factory = ClientFactory(settings)
        for pair in PAIRS:
            run(emulator, settings, factory, pair, optimized=True)  # warm up: tokens, connections
        emulator.inject(".*", latency=LATENCY)
        print(
            f"one diagnosis ({len(CHECKS)} checks), {int(LATENCY * 1000)} ms per request, median of {ROUNDS}"
        )
        print(f"{'pair':<24} {'run':<10} {'wall s':>7} {'requests':>9}  by service")
        for pair in PAIRS:
            results: dict[str, Any] = {}
            for label, optimized in (("optimized", True), ("baseline", False)):
                timings, counts = [], Counter[str]()
                for _ in range(ROUNDS):
                    elapsed, counts = run(emulator, settings, factory, pair, optimized=optimized)
                    timings.append(elapsed)
                results[label] = (statistics.median(timings), counts)
                services = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
                wall = results[label][0]
                print(
                    f"{'/'.join(pair):<24} {label:<10} {wall:>7.2f} {sum(counts.values()):>9}  {services}"
                )
            (fast, fast_counts), (slow, slow_counts) = results["optimized"], results["baseline"]
            print(
                f"{'/'.join(pair):<24} speed-up x{slow / fast:.1f}; "
                f"requests {sum(fast_counts.values())} vs {sum(slow_counts.values())}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
