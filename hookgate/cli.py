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

import click
from redis.exceptions import RedisError

from hookgate.config import ConfigError, load_config
from hookgate.logs import configure_logging

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
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, help="TCP port to listen on.")
@click.option(
    "--workers", default=1, show_default=True, help="Granian worker processes."
)
def serve(config_path: str, host: str, port: int, workers: int) -> None:
    """Run the ingest gateway."""
    from hookgate.gateway.server import serve as run_server

    configure_logging()
    _load(config_path)
    run_server(config_path, host=host, port=port, workers=workers)


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
def consume(
    config_path: str,
    consumer_name: str | None,
    visibility_timeout_ms: int,
    max_deliveries: int,
) -> None:
    """Run the consumer that turns ingest entries into downstream events."""
    from hookgate.consumers.app import run_consumer

    configure_logging()
    config = _load(config_path)
    name = consumer_name or f"{os.uname().nodename}-{os.getpid()}"
    try:
        asyncio.run(
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
    signed = f"{msg_id}.{timestamp}.".encode() + body.encode()
    digest = hmac.new(secrets[0], signed, hashlib.sha256).digest()
    click.echo(f"webhook-id: {msg_id}")
    click.echo(f"webhook-timestamp: {timestamp}")
    click.echo(f"webhook-signature: v1,{base64.b64encode(digest).decode()}")
    click.echo("content-type: application/json")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
