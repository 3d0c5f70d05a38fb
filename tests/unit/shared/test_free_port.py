"""free_port: ports for the servers the tests and `make run` start, chosen where no
outgoing connection can take them before the server binds."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import pytest

from shared import embedded_redis
from shared.embedded_redis import free_port


def test_ports_lie_below_the_ephemeral_range_and_are_never_handed_out_twice() -> None:
    start = embedded_redis._ephemeral_start()
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
    assert all(embedded_redis._LOWEST <= p < start for p in ports)


def test_the_range_is_read_from_the_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    range_file = tmp_path / "ip_local_port_range"
    range_file.write_text("20000\t60999\n")
    monkeypatch.setattr(embedded_redis, "_PORT_RANGE_FILE", range_file)
    assert all(free_port() < 20000 for _ in range(50))


def _scripted(monkeypatch: pytest.MonkeyPatch, picks: list[int]) -> None:
    """free_port draws ``picks`` in this order, with nothing handed out before."""
    queue = iter(picks)
    monkeypatch.setattr(random, "randrange", lambda _lo, _hi: next(queue))
    monkeypatch.setattr(embedded_redis, "_handed_out", set())


def test_a_port_in_use_is_skipped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        busy = taken.getsockname()[1]
        taken.listen()
        # Whatever range the kernel uses, make the busy port a candidate.
        range_file = tmp_path / "range"
        range_file.write_text("61000 65000")
        monkeypatch.setattr(embedded_redis, "_PORT_RANGE_FILE", range_file)
        other = next(p for p in range(busy + 1, 61000) if embedded_redis._bindable(p))
        _scripted(monkeypatch, [busy, other])
        assert free_port() == other


def test_a_cluster_node_also_needs_its_bus_port_free(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    range_file = tmp_path / "range"
    range_file.write_text("61000 65000")
    monkeypatch.setattr(embedded_redis, "_PORT_RANGE_FILE", range_file)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        bus = taken.getsockname()[1]
        taken.listen()
        blocked = bus - 10000  # free itself, but its bus port is taken
        assert embedded_redis._bindable(blocked)
        other = next(
            p
            for p in range(blocked + 1, 51000)
            if embedded_redis._bindable(p) and embedded_redis._bindable(p + 10000)
        )
        _scripted(monkeypatch, [blocked, other])
        assert free_port(offset=10000) == other
        assert other + 10000 < 61000
