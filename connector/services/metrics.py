"""Prometheus metrics: the counters of a process and the levels read from the database.

`GET /metrics` serves them (`connector.web.metrics`).

Two kinds of numbers:
- events counted by the process that saw them: webhook answers (recorded where the answer is
  logged), requests to destinations and new dead letters (recorded by the sync worker), and the
  latency of every HTTP request. They live in a per-app `CollectorRegistry`, never the global
  one: nothing is registered at import time and tests do not leak into each other.
- levels that the database knows better than any process: orders stored, outbox depth, dead
  letters waiting, last successful sync per destination. They are read at each scrape
  (`DatabaseCollector`), so every process and every scrape agrees on them.

Several processes (`stagesync serve` runs gunicorn workers, and the sync worker is a process of
its own) each count their own events. Set `PROMETHEUS_MULTIPROC_DIR` to an empty directory,
before stagesync starts, and prometheus_client's multiprocess mode adds them up: each process
writes its counters to files there, and a scrape reads them all. Without it a scrape shows the
counters of the one gunicorn worker that answered, and no sync counters. `stagesync demo` sets
it up; the database levels are right either way.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from connector.config import Settings
from connector.services.intake_health import REASONS, UNKNOWN_SHOP, IntakeHealth, shops_health
from connector.storage.currency import unconverted_orders
from connector.storage.orders import orders_stored
from connector.storage.outbox import QueueLevel, queue_levels
from connector.storage.store import Store

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# A webhook is answered within 1 s (SQLite's lock wait is bounded at 0.8 s): docs/architecture.md,
# 'The path of one webhook'.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.8, 1.0, 2.5, 5.0)
# The `status` label of a webhook answer: the JSON status for a 200, else what the code means.
WEBHOOK_STATUS = {400: "malformed", 401: "bad_signature", 404: "unknown_shop", 413: "too_large",
                  503: "storage_unavailable"}
# The latency's labels come from fixed sets, never from what a client sends (docs/http.md, 'Metrics'):
# a method outside this list is "other", a path no route of the app matches is "unmatched", and the
# status is its class.
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


def method_label(method: str) -> str:
    return method if method in HTTP_METHODS else "other"


def status_class(code: int) -> str:
    label = f"{code // 100}xx"
    return label if label in STATUS_CLASSES else "other"


class Metrics:
    """The events one app (or one sync worker) counts, in its own registry."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        self.webhooks = Counter(
            "stagesync_webhooks", "Webhook deliveries answered, by shop, platform and answer",
            ("shop", "platform", "code", "status"), registry=self.registry)
        self.sync_requests = Counter(
            "stagesync_sync_requests", "Requests made to destinations, by outcome (ok, retriable, fatal)",
            ("shop", "destination", "outcome"), registry=self.registry)
        self.dead_lettered = Counter(
            "stagesync_sync_dead_letters", "Outbox items that became dead letters",
            ("shop", "destination"), registry=self.registry)
        self.rejections = Counter(
            "stagesync_webhook_rejections", "Webhook deliveries refused, by shop (\"(unknown)\" for an unknown "
            "shop id) and reason", ("shop", "reason"), registry=self.registry)
        self.latency = Histogram(
            "stagesync_http_request_duration_seconds", "HTTP request latency, by method, route and status class",
            ("method", "route", "status"), buckets=LATENCY_BUCKETS, registry=self.registry)

    # --- recording ---------------------------------------------------------------------------

    def webhook(self, shop: str, platform: str, code: int, status: str | None = None) -> None:
        label = status if code == 200 and status else WEBHOOK_STATUS.get(code, "error")
        self.webhooks.labels(shop, platform, str(code), label).inc()

    def rejected(self, shop: str, reason: str) -> None:
        """`shop`: a configured shop's id or UNKNOWN_SHOP; `reason`: one of intake_health.REASONS."""
        self.rejections.labels(shop, reason).inc()

    def sync_request(self, shop: str, destination: str, outcome: str, requests: int = 1) -> None:
        """`outcome`: ok (the call returned, maybe with items refused one by one), retriable or fatal."""
        if requests > 0:
            self.sync_requests.labels(shop, destination, outcome).inc(requests)

    def dead_letter(self, shop: str, destination: str, items: int = 1) -> None:
        if items > 0:
            self.dead_lettered.labels(shop, destination).inc(items)

    def request_done(self, method: str, route: str, code: int, seconds: float) -> None:
        """`route` is the app's URL rule that matched (a fixed set), or "unmatched"."""
        self.latency.labels(method_label(method), route, status_class(code)).observe(seconds)

    # --- exposition --------------------------------------------------------------------------

    def exposition(self, store: Store, settings: Settings, now: datetime | None = None) -> bytes:
        """The text format: this app's counters (every process's in multiprocess mode), then the
        levels read from the database at `now` (default: the clock)."""
        counted = self.registry
        if multiprocess_dir():
            from prometheus_client import multiprocess

            counted = CollectorRegistry()
            multiprocess.MultiProcessCollector(counted)
        return generate_latest(counted) + generate_latest(DatabaseCollector(store, settings, now))


class NullMetrics(Metrics):
    """Counts nothing (a sync worker with nobody to scrape it)."""

    def __init__(self):  # noqa: D107 - no registry, no collectors
        pass

    def webhook(self, *args, **kwargs) -> None:
        pass

    def sync_request(self, *args, **kwargs) -> None:
        pass

    def rejected(self, *args, **kwargs) -> None:
        pass

    def dead_letter(self, *args, **kwargs) -> None:
        pass

    def request_done(self, *args, **kwargs) -> None:
        pass


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROCESS_ENV) or None


def worker_metrics() -> Metrics:
    """What a sync worker built without metrics records into: the shared files in multiprocess
    mode (a scrape of the web app then shows them), otherwise nothing."""
    return Metrics() if multiprocess_dir() else NullMetrics()


# --- levels read from the database ---------------------------------------------------------------

class DatabaseCollector:
    """Gauges read from the database at scrape time; every configured shop and destination appears,
    with 0 when there is nothing (an absent series cannot trigger an alert)."""

    def __init__(self, store: Store, settings: Settings, now: datetime | None = None):
        self.store = store
        self.settings = settings
        self.now = now

    def collect(self):
        up = GaugeMetricFamily("stagesync_database_up", "1 when the database answered this scrape")
        try:
            with self.store.read() as conn:
                stored = orders_stored(conn)
                levels = queue_levels(conn)
                unconverted = unconverted_orders(conn)
            health = shops_health(self.store, [*self.settings.shops, UNKNOWN_SHOP],
                                  self.now or datetime.now(timezone.utc))
        except Exception:  # noqa: BLE001 - a scrape reports the database down, it does not fail
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for shop in self.settings.shops.values():
            stored.setdefault(shop.id, 0)
            for destination in shop.destinations:
                levels.setdefault((shop.id, destination.name), QueueLevel())
        orders_gauge = GaugeMetricFamily("stagesync_orders_stored", "Orders stored, by shop", labels=("shop",))
        for shop_id, n in sorted(stored.items()):
            orders_gauge.add_metric([shop_id], n)
        yield orders_gauge
        unconverted_gauge = GaugeMetricFamily(
            "stagesync_orders_unconverted", "Valid orders in another currency with no exchange rate "
            "(counted as orders, left out of every amount), by shop", labels=("shop",))
        for shop_id in sorted(set(stored) | set(unconverted)):
            unconverted_gauge.add_metric([shop_id], unconverted.get(shop_id, 0))
        yield unconverted_gauge
        depth = GaugeMetricFamily("stagesync_outbox_depth", "Contacts waiting to be synced (retries included)",
                                  labels=("shop", "destination"))
        dead = GaugeMetricFamily("stagesync_dead_letters", "Dead letters waiting for a replay",
                                 labels=("shop", "destination"))
        last = GaugeMetricFamily("stagesync_sync_last_success_timestamp_seconds",
                                 "When a destination last acknowledged a contact (Unix time)",
                                 labels=("shop", "destination"))
        for (shop_id, destination), level in sorted(levels.items()):
            depth.add_metric([shop_id, destination], level.pending)
            dead.add_metric([shop_id, destination], level.dead)
            if level.last_success is not None:
                last.add_metric([shop_id, destination], level.last_success.timestamp())
        yield depth
        yield dead
        yield last
        yield from intake_gauges(health)


def intake_gauges(health: dict[str, IntakeHealth]):
    """Intake health (connector.services.intake_health) as gauges. Labels come from fixed sets: the
    configured shops (and "(unknown)" for refused deliveries), the platforms' topics and "other",
    the rejection reasons."""
    last = GaugeMetricFamily("stagesync_webhook_last_accepted_timestamp_seconds",
                             "When a verified webhook of this topic last arrived (Unix time, to the minute)",
                             labels=("shop", "topic"))
    rejected = GaugeMetricFamily("stagesync_webhook_rejected_24h",
                                 "Webhook deliveries refused in the last 24 hours, by shop and reason",
                                 labels=("shop", "reason"))
    missed = GaugeMetricFamily("stagesync_orders_missed_24h", "Orders that poll or backfill brought in the "
                               "last 24 hours and no webhook did, by shop", labels=("shop",))
    for shop_id, shop_health in sorted(health.items()):
        for topic, at in sorted(shop_health.last_accepted.items()):
            last.add_metric([shop_id, topic], at.timestamp())
        for reason in REASONS:
            rejected.add_metric([shop_id, reason], shop_health.rejected.get(reason, 0))
        if shop_id != UNKNOWN_SHOP:
            missed.add_metric([shop_id], len(shop_health.missed))
    yield last
    yield rejected
    yield missed
