"""The engine's Prometheus metrics, with the official ``prometheus-client``.

In-process figures (attempts, their durations, API requests) are counted as they
happen in the host; figures of the whole service (runs by kind and status, projection
lag, lease age) are read from the store at every scrape, so they tell the truth
whichever station or process wrote them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from engine.ports.host import HostLease

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RUN_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)


class StoreFigures(Collector):
    """Gauges read from the store when scraped."""

    def __init__(
        self,
        *,
        run_counts: Callable[[], dict[tuple[str, str], int]],
        projection_lag: Callable[[], int],
        lease: Callable[[], HostLease | None],
        now: Callable[[], datetime],
    ) -> None:
        self._run_counts = run_counts
        self._projection_lag = projection_lag
        self._lease = lease
        self._now = now

    def collect(self) -> Iterator[Metric]:
        runs = GaugeMetricFamily("soa_runs", "Task runs recorded, by kind and status.",
                                 labels=["kind", "status"])
        for (kind, status), count in sorted(self._run_counts().items()):
            runs.add_metric([kind, status], count)
        yield runs
        yield GaugeMetricFamily(
            "soa_projection_lag_events",
            "Events recorded that the furthest-behind read model has not applied yet.",
            value=self._projection_lag(),
        )
        lease = self._lease()
        age = GaugeMetricFamily(
            "soa_host_lease_age_seconds",
            "Seconds since the running host last renewed its lease (absent when none runs).",
        )
        if lease is not None:
            age.add_metric([], (self._now() - lease.heartbeat_at).total_seconds())
        yield age


class EngineMetrics:
    """The registry of one process: the host's observer of attempts and the API's
    request counter; :meth:`exposition` is the ``/metrics`` text."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.attempts = Counter(
            "soa_attempts", "Attempts of task runs that ended, by kind and outcome.",
            ["kind", "outcome"], registry=self.registry,
        )
        self.attempts_failed = Counter(
            "soa_attempts_failed", "Attempts that failed or timed out, by kind.",
            ["kind"], registry=self.registry,
        )
        self.run_duration = Histogram(
            "soa_run_duration_seconds", "How long attempts ran, by kind.", ["kind"],
            buckets=RUN_DURATION_BUCKETS, registry=self.registry,
        )
        self.sync_items = Counter(
            "soa_sync_items", "Items partner synchronisations sent or brought in, by kind "
            "and direction.", ["kind", "direction"], registry=self.registry,
        )
        self.api_requests = Counter(
            "soa_api_requests", "HTTP requests answered, by method, route and status.",
            ["method", "route", "status"], registry=self.registry,
        )
        self.api_duration = Histogram(
            "soa_api_request_duration_seconds", "How long HTTP requests took, by route.",
            ["route"], registry=self.registry,
        )

    def add_store_figures(self, figures: StoreFigures) -> None:
        self.registry.register(figures)

    def attempt_ended(self, kind: str, outcome: str, duration_seconds: float,
                      counts: Mapping[str, int] | None = None) -> None:
        self.attempts.labels(kind, outcome).inc()
        if outcome != "succeeded":
            self.attempts_failed.labels(kind).inc()
        self.run_duration.labels(kind).observe(duration_seconds)
        if kind.startswith("sync_") and counts:
            for direction in ("sent", "received"):
                if counts.get(direction):
                    self.sync_items.labels(kind, direction).inc(counts[direction])

    def request_answered(self, method: str, route: str, status: int, seconds: float) -> None:
        self.api_requests.labels(method, route, str(status)).inc()
        self.api_duration.labels(route).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
