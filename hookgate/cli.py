"""The ``hookgate`` command line.

Every command reads Redis from ``REDIS_URL`` (default ``redis://127.0.0.1:6379/0``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import msgspec
import redis
import uvloop
from redis.exceptions import RedisError

from hookgate import dlq as dlq_module
from hookgate.config import ConfigError, load_config
from hookgate.logs import configure_logging
from hookgate.sentry import init_sentry

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_url() -> str:
    return os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL


def _redis_failure(exc: Exception) -> str:
    # The URL may carry a password, so only the host part is shown.
    where = redis_url().rpartition("@")[2]
    return f"Redis at {where} failed: {exc}; check REDIS_URL and that Redis is running"


def _load(config_path: str):  # type: ignore[no-untyped-def]
    try:
        return load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(f"{config_path}: {exc}") from None


config_option = click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="TOML file that lists the sources.",
)


@click.group()
def main() -> None:
    """hookgate: verify webhooks, write them to Redis Streams, process them."""


@main.command()
@config_option
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="IP address to bind."
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8000,
    show_default=True,
    help="TCP port to listen on.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Granian worker processes.",
)
def serve(config_path: str, host: str, port: int, workers: int) -> None:
    """Run the ingest gateway."""
    from hookgate import tracing
    from hookgate.gateway.server import ListenError
    from hookgate.gateway.server import serve as run_server
    from hookgate.gateway.worker_metrics import MetricsDirError

    configure_logging()
    _load(config_path)
    # Each worker builds its own tracer provider; checking the variables here
    # stops a bad setting before any worker starts.
    try:
        # The sampler matters only when tracing is on, as in the workers.
        if tracing.exporter_names():
            tracing.check_sampler()
    except tracing.TracingConfigError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        run_server(config_path, host=host, port=port, workers=workers)
    except (MetricsDirError, ListenError) as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@config_option
@click.option(
    "--name",
    "consumer_name",
    default=None,
    help="Consumer name within the group; defaults to host name and PID.",
)
@click.option(
    "--visibility-timeout-ms",
    type=click.IntRange(min=1),
    default=30_000,
    show_default=True,
    help="How long an entry may stay unacknowledged before another consumer"
    " reclaims it, in milliseconds.",
)
@click.option(
    "--max-deliveries",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Deliveries after which an unacknowledged entry is dead-lettered as poison.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(min=0, max=65535),
    default=0,
    show_default=True,
    help="Port that serves Prometheus metrics on /metrics; 0 serves none.",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    help="Address that the metrics port binds.",
)
def consume(
    config_path: str,
    consumer_name: str | None,
    visibility_timeout_ms: int,
    max_deliveries: int,
    metrics_port: int,
    metrics_host: str,
) -> None:
    """Run the consumer that turns ingest entries into downstream events."""
    from hookgate import tracing
    from hookgate.consumers.app import ConsumerStopped, run_consumer
    from hookgate.consumers.telemetry import start_metrics_server

    configure_logging()
    config = _load(config_path)
    init_sentry(config, "consumer")
    try:
        tracing.configure("hookgate-consumer")
    except tracing.TracingConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if metrics_port:
        try:
            start_metrics_server(
                metrics_host, metrics_port, redis_url(), config.tenants
            )
        except OSError as exc:
            raise click.ClickException(
                f"failed to bind the metrics port {metrics_host}:{metrics_port}"
                f" ({exc}); choose another --metrics-port"
            ) from None
    name = consumer_name or f"{os.uname().nodename}-{os.getpid()}"
    try:
        # uvloop, as the gateway runs on, for the same socket-heavy work.
        uvloop.run(
            run_consumer(
                config,
                redis_url(),
                name,
                visibility_timeout_ms=visibility_timeout_ms,
                max_deliveries=max_deliveries,
            )
        )
    except RedisError as exc:
        raise click.ClickException(_redis_failure(exc)) from None
    except ConsumerStopped as exc:
        raise click.ClickException(
            f"consumer stopped: {exc} Starting it again creates missing groups at"
            " id 0, so it skips no entry written meanwhile."
        ) from None


@main.command("sync-worker")
@config_option
@click.option(
    "--name",
    "consumer_name",
    default=None,
    help="Consumer name within the sync group; defaults to host name and PID.",
)
@click.option(
    "--window-ms",
    type=click.IntRange(min=1),
    default=1_000,
    show_default=True,
    help="How long a mailbox's first event waits for more before its sync job,"
    " in milliseconds.",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Attempts after which a failing sync job is dead-lettered.",
)
def sync_worker(
    config_path: str, consumer_name: str | None, window_ms: int, max_attempts: int
) -> None:
    """Coalesce mailbox events into sync jobs and log each job (a demo handler)."""
    from hookgate.consumers.coalesce import CoalescerSettings, run_sync_worker
    from hookgate.consumers.jobs import MAILBOX_SYNC, RetryPolicy

    configure_logging()
    config = _load(config_path)
    init_sentry(config, "sync-worker")
    name = consumer_name or f"{os.uname().nodename}-{os.getpid()}"
    settings = CoalescerSettings(
        window_ms=window_ms,
        retry_policies={MAILBOX_SYNC: RetryPolicy(max_attempts=max_attempts)},
    )
    try:
        asyncio.run(
            run_sync_worker(config.tenants, redis_url(), name, settings=settings)
        )
    except RedisError as exc:
        raise click.ClickException(_redis_failure(exc)) from None


@main.command()
@click.option("--tenant", required=True, help="Tenant whose stream to read.")
@click.option(
    "--stream",
    "kind",
    type=click.Choice(["events", "ingest", "dead"]),
    default="events",
    show_default=True,
    help="Which of the tenant's streams.",
)
@click.option(
    "--from-start",
    is_flag=True,
    help="Print existing entries first, not only new ones.",
)
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after this many entries.",
)
def tail(tenant: str, kind: str, from_start: bool, count: int | None) -> None:
    """Print a tenant's stream entries as JSON lines, following new ones."""
    from hookgate.tail import tail_stream

    with contextlib.suppress(KeyboardInterrupt):
        try:
            asyncio.run(
                tail_stream(
                    redis_url(), tenant, kind, from_start=from_start, count=count
                )
            )
        except RedisError as exc:
            raise click.ClickException(_redis_failure(exc)) from None


@main.command()
@config_option
@click.option(
    "--source", "source_id", required=True, help="Standard Webhooks source id."
)
@click.option("--body", required=True, help="The exact body that will be sent.")
@click.option("--id", "msg_id", default=None, help="webhook-id; random when omitted.")
def sign(config_path: str, source_id: str, body: str, msg_id: str | None) -> None:
    """Print Standard Webhooks headers for BODY, one per line (for curl -H @file).

    Signs with the source's first unexpired secret, read from the environment like
    the gateway does.
    """
    import hashlib
    import hmac

    config = _load(config_path)
    source = next((s for s in config.sources if s.id == source_id), None)
    if source is None:
        raise click.ClickException(f"no source {source_id!r} in {config_path}")
    if source.provider != "standard-webhooks":
        raise click.ClickException(
            f"source {source_id!r} uses provider {source.provider!r}; only"
            " standard-webhooks sources are signed"
        )
    now = time.time()
    secrets = source.active_secrets(now)
    if not secrets:
        raise click.ClickException(
            f"every secret of source {source_id!r} has expired; add one to"
            f" {config_path} under 'secret_env' or 'secrets'"
        )
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = str(int(now))
    # The shell passes bytes; os.fsencode gives back those bytes, also when they
    # are not UTF-8, which is what curl --data-binary sends for the same argument.
    signed = f"{msg_id}.{timestamp}.".encode() + os.fsencode(body)
    digest = hmac.new(secrets[0], signed, hashlib.sha256).digest()
    click.echo(f"webhook-id: {msg_id}")
    click.echo(f"webhook-timestamp: {timestamp}")
    click.echo(f"webhook-signature: v1,{base64.b64encode(digest).decode()}")
    click.echo("content-type: application/json")


@main.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("bench-report"),
    show_default=True,
    help="Folder for results.json, report.md, the plots and the run's logs.",
)
@click.option(
    "--budget",
    "budget_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Budget file to check; defaults to loadtest/budget.toml.",
)
@click.option(
    "--short",
    is_flag=True,
    help="CI form: 2 s warm-ups, 5 s measured runs, shorter micro benchmarks.",
)
@click.option(
    "--slowdown",
    type=click.Choice(["no-batching"]),
    default=None,
    help="Run the gateway with max_batch = 1, to see the budget catch a regression.",
)
@click.option(
    "--batch-io-threads",
    is_flag=True,
    help="Run bare Granian and every gateway with batch_io_threads = true.",
)
@click.option(
    "--only",
    multiple=True,
    metavar="STEP",
    help="Run only this step (repeatable): micro, bare, nowrite, hookgate, mix,"
    " open, tracing, fastapi.",
)
def bench(
    out: Path,
    budget_path: Path | None,
    short: bool,
    slowdown: str | None,
    batch_io_threads: bool,
    only: tuple[str, ...],
) -> None:
    """Measure throughput and latency against baselines; check the budget.

    Exits 1 when a budget entry missed, 2 when a step failed.
    """
    from hookgate.loadtest._budget import DEFAULT_BUDGET, BudgetError
    from hookgate.loadtest.bench import BenchOptions, run_bench

    options = BenchOptions(
        out=out,
        budget=budget_path or DEFAULT_BUDGET,
        short=short,
        slowdown=slowdown,
        batch_io_threads=batch_io_threads,
        only=only,
    )
    try:
        status = run_bench(options)
    except (BudgetError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(status)


@main.group()
def dlq() -> None:
    """Inspect, replay and purge a tenant's dead-letter stream."""


def _dlq_options(function: F) -> F:
    options = [
        click.option("--tenant", required=True, help="Tenant whose dead letters."),
        click.option("--source", default=None, help="Only entries of this source id."),
        click.option(
            "--error-type", default=None, help="Only entries with this error type."
        ),
        click.option(
            "--since",
            type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"]),
            default=None,
            help="Only entries dead-lettered at or after this UTC time.",
        ),
        click.option(
            "--until",
            type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"]),
            default=None,
            help="Only entries dead-lettered at or before this UTC time.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _filter(
    source: str | None,
    error_type: str | None,
    since: datetime | None,
    until: datetime | None,
    ids: tuple[str, ...] = (),
) -> dlq_module.Filter:
    def millis(moment: datetime | None) -> int | None:
        if moment is None:
            return None
        return int(moment.replace(tzinfo=UTC).timestamp() * 1000)

    return dlq_module.Filter(
        source=source,
        error_type=error_type,
        since_ms=millis(since),
        until_ms=millis(until),
        ids=ids,
    )


def _client() -> redis.Redis:
    return redis.Redis.from_url(redis_url())


@dlq.command("list")
@_dlq_options
def dlq_list(
    tenant: str,
    source: str | None,
    error_type: str | None,
    since: datetime | None,
    until: datetime | None,
) -> None:
    """Print one line per dead-letter entry: id, time, source, event, error."""
    chosen = _filter(source, error_type, since, until)
    try:
        for entry_id, fields in dlq_module.select(_client(), tenant, chosen):
            shown = dlq_module.printable(fields)
            failed_at = datetime.fromtimestamp(
                dlq_module.failed_at(entry_id, fields) / 1000, tz=UTC
            )
            click.echo(
                f"{entry_id}  {failed_at:%Y-%m-%dT%H:%M:%SZ}"
                f"  source={shown.get('source', '?')}"
                f"  event_id={shown.get('event_id', '?')}"
                f"  {shown.get('error_type', '?')}: {shown.get('error', '')}"
            )
    except RedisError as exc:
        raise click.ClickException(_redis_failure(exc)) from None


@dlq.command("show")
@click.option("--tenant", required=True, help="Tenant whose dead letters.")
@click.argument("entry_id")
def dlq_show(tenant: str, entry_id: str) -> None:
    """Print one dead-letter entry with every field, as JSON."""
    try:
        found = list(
            dlq_module.select(_client(), tenant, dlq_module.Filter(ids=(entry_id,)))
        )
    except RedisError as exc:
        raise click.ClickException(_redis_failure(exc)) from None
    if not found:
        raise click.ClickException(f"no dead-letter entry {entry_id} for {tenant!r}")
    _, fields = found[0]
    click.echo(
        msgspec.json.format(
            msgspec.json.encode({"id": entry_id, **dlq_module.printable(fields)})
        ).decode()
    )


def _entries(count: int) -> str:
    return f"{count} entry" if count == 1 else f"{count} entries"


@dlq.command("replay")
@_dlq_options
@click.argument("entry_ids", nargs=-1)
def dlq_replay(
    tenant: str,
    source: str | None,
    error_type: str | None,
    since: datetime | None,
    until: datetime | None,
    entry_ids: tuple[str, ...],
) -> None:
    """Write matching dead letters back to the ingest stream, keeping event ids."""
    client = _client()
    chosen = _filter(source, error_type, since, until, entry_ids)
    replayed = 0
    skipped = 0
    try:
        for entry_id, fields in list(dlq_module.select(client, tenant, chosen)):
            if not dlq_module.is_ingest_entry(fields):
                skipped += 1
                continue
            dlq_module.replay(client, tenant, entry_id, fields)
            replayed += 1
    except RedisError as exc:
        raise click.ClickException(_redis_failure(exc)) from None
    click.echo(f"replayed {_entries(replayed)} to the ingest stream of {tenant!r}")
    if skipped:
        click.echo(
            f"skipped {_entries(skipped)} without the fields of an ingest entry,"
            " such as failed sync jobs: replay writes back only ingest entries"
        )


@dlq.command("purge")
@_dlq_options
@click.argument("entry_ids", nargs=-1)
@click.option("--yes", is_flag=True, help="Delete without asking for confirmation.")
def dlq_purge(
    tenant: str,
    source: str | None,
    error_type: str | None,
    since: datetime | None,
    until: datetime | None,
    entry_ids: tuple[str, ...],
    yes: bool,
) -> None:
    """Delete matching dead letters for good."""
    client = _client()
    chosen = _filter(source, error_type, since, until, entry_ids)
    try:
        ids = [entry_id for entry_id, _ in dlq_module.select(client, tenant, chosen)]
        if not ids:
            click.echo("no matching dead-letter entries")
            return
        if not yes:
            click.confirm(
                f"delete {len(ids)} dead-letter entries of {tenant!r}?", abort=True
            )
        deleted = dlq_module.purge(client, tenant, ids)
    except RedisError as exc:
        raise click.ClickException(_redis_failure(exc)) from None
    click.echo(f"deleted {_entries(deleted)}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
