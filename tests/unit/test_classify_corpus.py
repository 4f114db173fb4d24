"""The classifier on real pull errors that people pasted in public threads (tests/unit/corpus/).

Every message must get the family a support engineer gave it; the summary prints the hit rate
per family (``pytest -s``; ``make bench`` prints it too, with the time per message).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.classify import FAMILIES, UNKNOWN, classify

CORPUS_FILE = Path(__file__).parent / "corpus" / "pull_errors.yaml"
CORPUS: list[dict[str, Any]] = yaml.safe_load(CORPUS_FILE.read_text(encoding="utf-8"))
SOURCE = re.compile(
    r"https://(?:github\.com/[^/\s]+/[^/\s]+/(?:issues|pull)/\d+|[a-z0-9.\-]+/\S+)$"
)

# What the classifier must recognise as the writer of a message, by the corpus' runtime label.
RUNTIMES = {
    "containerd": "containerd",
    "cri-o": "cri-o",
    "containers/image": "cri-o",
    "docker": "docker",
    "dockershim": "docker",
    "docker-windows": "windows",
    "containerd-windows": "windows",
    "kubelet": "kubelet",
}
# Messages whose words are not their runtime's: a bare gRPC deadline names none, a dockershim
# back-off line is the kubelet's own.
RUNTIME_WORDS = {
    "crio-189-event-table-deadline": None,
    "crio-189-failedsync-errimagepull-deadline": None,
    "minikube-322-pod-workers-backoff-only": "kubelet",
}


def test_corpus_is_large_sourced_and_covers_every_family_and_wrapper() -> None:
    assert len(CORPUS) >= 60
    ids = [entry["id"] for entry in CORPUS]
    assert len(ids) == len(set(ids))
    for entry in CORPUS:
        assert set(entry) <= {"id", "source", "family", "runtime", "wrapper", "note", "renamed"} | {
            "message"
        }, entry["id"]
        assert SOURCE.match(entry["source"]), entry["id"]
        assert entry["family"] in (*FAMILIES, UNKNOWN), entry["id"]
        assert entry["message"].strip(), entry["id"]
    assert {entry["family"] for entry in CORPUS} == {*FAMILIES, UNKNOWN}
    runtimes = {entry["runtime"] for entry in CORPUS}
    assert {"containerd", "docker", "dockershim", "cri-o", "kubelet"} <= runtimes
    assert {"docker-windows", "containerd-windows"} <= runtimes
    wrappers = " ".join(entry["wrapper"] for entry in CORPUS)
    for wrapper in ("journal", "kubelet-log", "describe", "json", "u0027", "html-crlf", "csv"):
        assert wrapper in wrappers, wrapper


@pytest.mark.parametrize("entry", [pytest.param(e, id=e["id"]) for e in CORPUS])
def test_real_message_gets_its_family(entry: dict[str, Any]) -> None:
    result = classify(entry["message"])
    assert result.cause == entry["family"], result.reason
    if result.cause != UNKNOWN:
        assert result.candidates[0] == result.cause


@pytest.mark.parametrize(
    "entry",
    [pytest.param(e, id=e["id"]) for e in CORPUS if e["runtime"] in RUNTIMES],
)
def test_runtime_is_recognised(entry: dict[str, Any]) -> None:
    expected = RUNTIME_WORDS.get(entry["id"], RUNTIMES[entry["runtime"]])
    assert classify(entry["message"]).runtime == expected


def test_hit_rate_per_family(capsys: pytest.CaptureFixture[str]) -> None:
    total, hits = Counter[str](), Counter[str]()
    for entry in CORPUS:
        total[entry["family"]] += 1
        hits[entry["family"]] += classify(entry["message"]).cause == entry["family"]
    with capsys.disabled():
        rows = ", ".join(f"{f} {hits[f]}/{total[f]}" for f in (*FAMILIES, UNKNOWN))
        print(f"\ncorpus hit rate {sum(hits.values())}/{len(CORPUS)}: {rows}")
    assert hits == total
