"""`neurender serve`: the gRPC neural-rendering server."""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve model bundles over gRPC (stateful Render streams, batching, health, metrics)",
        description="Serve every model bundle in a folder over gRPC. Settings come from a YAML file "
        "(see server/serve.yaml for every key and its default). SIGTERM drains: health goes "
        "NOT_SERVING, new sessions are refused, frames already received finish.",
    )
    parser.add_argument("--models", required=True, metavar="DIR", help="a model bundle, or a folder of bundles")
    parser.add_argument("--config", metavar="FILE", help="YAML settings file (defaults: server/serve.yaml)")
    parser.add_argument(
        "--address", metavar="HOST:PORT", help="listen address, overriding the config's (port 0 picks one)"
    )
    metrics = parser.add_mutually_exclusive_group()
    metrics.add_argument(
        "--metrics-address",
        metavar="HOST:PORT",
        help="Prometheus /metrics address, overriding the config's metrics_address and metrics_port "
        "(default 127.0.0.1:9464; port 0 picks one)",
    )
    metrics.add_argument("--no-metrics", action="store_true", help="serve no metrics (the config's metrics_port: null)")
    parser.set_defaults(handler=serve)


def serve(args: argparse.Namespace) -> int:
    from neurender.common.errors import UserError
    from neurender.server.config import ConfigError, load_config
    from neurender.server.logs import configure_logging

    try:
        config = load_config(args.config)
        if args.address:
            config = replace(config, address=args.address)
        if args.metrics_address:
            host, port = _host_port(args.metrics_address)
            config = replace(config, metrics_address=host, metrics_port=port)
        if args.no_metrics:
            config = replace(config, metrics_port=None)
        if args.log_format:
            config = replace(config, log_format=args.log_format)
        config.token()  # a missing or empty token file is a user error, found before anything loads
    except ConfigError as err:
        raise UserError(str(err)) from None
    configure_logging(config.log_format, logging.DEBUG if args.verbose else logging.INFO)

    from neurender.server.app import run
    from neurender.server.registry import RegistryError

    try:
        return run(args.models, config)
    except (RegistryError, OSError) as err:
        raise UserError(str(err)) from None


def _host_port(text: str) -> tuple[str, int]:
    from neurender.server.config import ConfigError

    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"--metrics-address {text!r}: expected HOST:PORT with a port 0-65535, e.g. 127.0.0.1:9465")
    return host, int(port)
