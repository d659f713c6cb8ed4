"""Prometheus metrics: what operators graph and alert on, with no user data in any label.

Each application owns a `Metrics` with its own CollectorRegistry (never prometheus_client's global
one), so several apps in one process (tests) do not share counters. Labels are bounded sets:
HTTP routes are their templates (`/webhooks/{plugin}/{token}`, never the path itself, which
carries ids and secrets), tRPC procedures are the declared ones or "unknown", codes and methods
come from fixed lists.

Two kinds of numbers:
- counted in this process as requests pass (HTTP, tRPC, sync sizes): per server, sum them;
- read from the database at scrape time (inbox states, queue depth, failed tasks, notification
  outbox): the database is the source of truth shared by every server and worker, so each server
  reports the same value: aggregate them with max(), not sum().

Other modules report through module functions (`observe_sync`), which find the current request's
Metrics through a context variable and do nothing outside a request.
"""

from __future__ import annotations

import bisect
import contextvars
import hmac
import itertools
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from trainer import __version__, clock
from trainer.db import Database
from trainer.db.catalog import has_table
from trainer.rpc.errors import TRPC_CODES

log = logging.getLogger("trainer.metrics")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SYNC_BUCKETS = (0, 1, 10, 50, 100, 500, 1000, 5000, 10000, 50000)
TRPC_PREFIX = "/trpc/"
MAX_SERIES = 10_000


class Metrics:
    """The metric families of one application and the scrape-time database readings."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        Info("trainer_build", "Version of this trainer", registry=r).info({"version": __version__})
        self.requests = RequestCounts()
        r.register(self.requests)
        self.trpc_calls = Counter(
            "trainer_trpc_calls", "tRPC calls by procedure and result", ["procedure", "code"], registry=r
        )
        self.sync_records = Histogram(
            "trainer_sync_records", "Records per sync pull or push", ["direction"], buckets=SYNC_BUCKETS, registry=r
        )
        self.db_up = Gauge("trainer_database_up", "1 when the last scrape could read the database", registry=r)
        self.inbox = Gauge("trainer_inbox_events", "Webhook inbox rows by state", ["state"], registry=r)
        self.queue_due = Gauge(
            "trainer_queue_due", "Inbox events due for processing now (the real queue depth)", registry=r
        )
        self.queue_oldest = Gauge(
            "trainer_queue_oldest_due_age_seconds", "Age of the oldest due inbox event (0 when none)", registry=r
        )
        self.task_failed = Gauge(
            "trainer_task_failed", "Inbox events given up on (dead letter), by plugin", ["plugin"], registry=r
        )
        self.task_retrying = Gauge(
            "trainer_task_retrying",
            "Pending inbox events that already failed at least once, by plugin",
            ["plugin"],
            registry=r,
        )
        self.notifications = Gauge(
            "trainer_notifications", "Notification outbox rows by status", ["status"], registry=r
        )
        self._tables: set[str] = set()

    # -- counted in this process --------------------------------------------------------------

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.observe(method, route, status, seconds)

    def observe_trpc(self, procedure: str, code: str) -> None:
        self.trpc_calls.labels(procedure, code).inc()

    # -- read from the database at scrape time ------------------------------------------------

    async def refresh(self, db: Database) -> None:
        """Set the database-backed gauges. A failure leaves them out and reports the database down."""
        try:
            await self._read_inbox(db)
            await self._read_notifications(db)
        except Exception as exc:  # a scrape must still answer when the database does not
            log.warning("metrics could not read the database: %s", type(exc).__name__)
            self.db_up.set(0)
            return
        self.db_up.set(1)

    async def _present(self, db: Database, table: str, *columns: str) -> bool:
        """Optional tables (ingest, notify) are counted only once a migration created them."""
        if table not in self._tables and await has_table(db, table, *columns):
            self._tables.add(table)
        return table in self._tables

    async def _read_inbox(self, db: Database) -> None:
        if not await self._present(db, "inbox", "state", "plugin", "attempts", "next_attempt_at", "received_at"):
            return
        now = clock.now_ms()
        _set_all(self.inbox, await db.fetch("SELECT state AS label, count(*) AS n FROM inbox GROUP BY state"))
        due = await db.fetchrow(
            "SELECT count(*) AS n, min(received_at) AS oldest FROM inbox"
            " WHERE state = 'pending' AND next_attempt_at <= $1",
            now,
        )
        assert due is not None
        self.queue_due.set(due["n"])
        self.queue_oldest.set(max(0.0, (now - due["oldest"]) / 1000) if due["oldest"] is not None else 0.0)
        _set_all(
            self.task_failed,
            await db.fetch("SELECT plugin AS label, count(*) AS n FROM inbox WHERE state = 'failed' GROUP BY plugin"),
        )
        _set_all(
            self.task_retrying,
            await db.fetch(
                "SELECT plugin AS label, count(*) AS n FROM inbox"
                " WHERE state = 'pending' AND attempts > 0 GROUP BY plugin"
            ),
        )

    async def _read_notifications(self, db: Database) -> None:
        if await self._present(db, "notifications", "status"):
            rows = await db.fetch("SELECT status AS label, count(*) AS n FROM notifications GROUP BY status")
            _set_all(self.notifications, rows)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _set_all(gauge: Gauge, rows: Iterable[dict[str, Any]]) -> None:
    """Replace every labelled value, so a state that emptied drops out instead of showing a stale count."""
    gauge.clear()
    for row in rows:
        gauge.labels(str(row["label"])).set(row["n"])


class RequestCounts(Collector):
    """HTTP requests by (method, route, status) and their latency histogram by (method, route).

    Counted with plain integers, not prometheus_client's Counter and Histogram: those take a lock
    for each value they change (three per request), which cost more than everything else this
    middleware does. Every request is counted on the event loop's thread, so nothing here needs a
    lock; a scrape reads the numbers on the same thread.
    """

    def __init__(self) -> None:
        # (method, route, status) -> [count, seconds, count in each LATENCY_BUCKETS bucket (not cumulative)]
        self._series: dict[tuple[str, str, int], list[Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        series = self._series.get((method, route, status))
        if series is None:
            if len(self._series) >= MAX_SERIES:  # routes are templates: bounded, but be safe
                route = "other"
            method = method if method in METHODS else "other"
            series = self._series.setdefault((method, route, status), [0, 0.0, [0] * len(LATENCY_BUCKETS)])
        series[0] += 1
        series[1] += seconds
        at = bisect.bisect_left(LATENCY_BUCKETS, seconds)
        if at < len(LATENCY_BUCKETS):
            series[2][at] += 1

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "trainer_http_requests", "HTTP requests answered", labels=["method", "route", "status"]
        )
        latency: dict[tuple[str, str], list[Any]] = {}
        for (method, route, status), (count, seconds, buckets) in self._series.items():
            requests.add_metric([method, route, str(status)], count)
            total = latency.setdefault((method, route), [0, 0.0, [0] * len(LATENCY_BUCKETS)])
            total[0] += count
            total[1] += seconds
            total[2] = [a + b for a, b in zip(total[2], buckets, strict=True)]
        durations = HistogramMetricFamily(
            "trainer_http_request_duration_seconds",
            "Time from request to response, by route template",
            labels=["method", "route"],
        )
        for labels, (count, seconds, buckets) in latency.items():
            cumulative = list(itertools.accumulate(buckets))
            bounds = [(floatToGoString(le), n) for le, n in zip(LATENCY_BUCKETS, cumulative, strict=True)]
            durations.add_metric(list(labels), [*bounds, ("+Inf", count)], seconds)
        yield requests
        yield durations


METRICS = web.AppKey("metrics", Metrics)
_current: contextvars.ContextVar[Metrics | None] = contextvars.ContextVar("trainer_metrics", default=None)


# -- what other modules call ------------------------------------------------------------------


def observe_sync(records: int, direction: str = "pull") -> None:
    """Record the size of one sync pull or push (number of records); a no-op outside a request."""
    metrics = _current.get()
    if metrics is not None and direction in ("pull", "push"):
        metrics.sync_records.labels(direction).observe(records)


# -- HTTP edge --------------------------------------------------------------------------------


def route_of(request: web.Request) -> str:
    """The route template that matched (bounded), never the raw path (ids, tokens)."""
    resource = request.match_info.route.resource
    if resource is None:
        return "unmatched"
    return resource.canonical


def middleware(metrics: Metrics) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Count and time every request by route template; outermost, so it sees the final status."""

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        token = _current.set(metrics)
        started = time.perf_counter()
        status = 500
        response: web.StreamResponse | None = None
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            _current.reset(token)
            metrics.observe_request(request.method, route_of(request), status, time.perf_counter() - started)
            if request.path.startswith(TRPC_PREFIX) and response is not None:
                _observe_trpc_response(metrics, request, response)

    return observe


def _procedures(request: web.Request) -> set[str]:
    from trainer.rpc.wire import PROCEDURES

    return set(request.app[PROCEDURES])


def _observe_trpc_response(metrics: Metrics, request: web.Request, response: web.StreamResponse) -> None:
    """tRPC calls by procedure and code, read from the response envelope(s).

    Successes are known from the status alone; only error responses (small) and batches that mix
    outcomes are parsed, so a large successful pull is never decoded here.
    """
    known = _procedures(request)
    raw = request.match_info.get("path", "")
    is_batch = request.query.get("batch") in ("1", "true")
    paths = [p if p in known else "unknown" for p in (raw.split(",") if is_batch else [raw])]
    body = response.body if isinstance(response, web.Response) else None
    if not isinstance(body, bytes):  # streamed: it only streams a success
        codes = ["OK"] * len(paths) if response.status == 200 else [_code_of_status(response.status)] * len(paths)
    elif not is_batch:
        codes = ["OK" if response.status == 200 else _error_code(_loads(body))]
    elif response.status == 200 and b'"error"' not in body:
        codes = ["OK"] * len(paths)
    else:
        codes = _batch_codes(body, len(paths))
    for path, code in zip(paths, codes, strict=False):
        metrics.observe_trpc(path, code)


def _loads(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _error_code(envelope: Any) -> str:
    try:
        code = envelope["error"]["data"]["code"]
    except (TypeError, KeyError):
        return "OK" if isinstance(envelope, dict) and "result" in envelope else "INTERNAL_SERVER_ERROR"
    return code if code in TRPC_CODES else "INTERNAL_SERVER_ERROR"


def _batch_codes(body: bytes, count: int) -> list[str]:
    """A JSON array of envelopes, or httpBatchStreamLink's JSONL head {"0": [[envelope]], ...}."""
    first_line = body.split(b"\n", 1)[0]
    doc = _loads(first_line if first_line.startswith(b"{") else body)
    if isinstance(doc, list):
        return [_error_code(e) for e in doc]
    if isinstance(doc, dict) and "error" not in doc:
        return [_error_code(_jsonl_envelope(doc.get(str(i)))) for i in range(count)]
    return [_error_code(doc)] * count  # the whole batch failed before any call ran


def _jsonl_envelope(value: Any) -> Any:
    while isinstance(value, list) and value:
        value = value[0]
    return value


def _code_of_status(status: int) -> str:
    for code, (_, http) in TRPC_CODES.items():
        if http == status:
            return code
    return "INTERNAL_SERVER_ERROR"


# -- the endpoint -----------------------------------------------------------------------------


def handler(token: str | None, db_of: Callable[[web.Request], Database]) -> Handler:
    """GET /metrics, behind a bearer token when `metrics_token` is set."""
    expected = f"Bearer {token}".encode() if token else None

    async def metrics_endpoint(request: web.Request) -> web.StreamResponse:
        if expected is not None:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return web.json_response(
                    {"error": {"code": "UNAUTHORIZED", "message": "metrics need the bearer token (metrics_token)"}},
                    status=401,
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
        metrics = request.app[METRICS]
        await metrics.refresh(db_of(request))
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return metrics_endpoint


def install(app: web.Application, token: str | None, db_of: Callable[[web.Request], Database]) -> Metrics:
    """Give `app` its own metrics, the counting middleware (outermost) and GET /metrics."""
    metrics = Metrics()
    app[METRICS] = metrics
    app.middlewares.insert(0, middleware(metrics))
    app.router.add_get("/metrics", handler(token, db_of))
    return metrics
