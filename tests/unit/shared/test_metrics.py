from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest
from prometheus_client.core import GaugeMetricFamily

from shared.metrics import Metrics


class QueueDepth:
    def collect(self) -> Iterable[GaugeMetricFamily]:
        yield GaugeMetricFamily("sb_test_queue_depth", "Tasks waiting", value=7)


@pytest.mark.parametrize("multiprocess", [False, True])
def test_collectors_a_service_registers_are_scraped_in_both_modes(
    multiprocess: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if multiprocess:  # as under gunicorn: counters come from the workers' files
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    metrics = Metrics("routing")
    metrics.registry.register(QueueDepth())
    metrics.requests.labels("routing", "GET", "/x", "200").inc()
    text = metrics.render().decode()
    assert "sb_test_queue_depth 7.0" in text
    assert text.count("# TYPE sb_test_queue_depth gauge") == 1
    # In multiprocess mode the request counter is read from the (empty) files only,
    # so it is not rendered twice.
    assert ("sb_http_requests_total{" in text) is (not multiprocess)
