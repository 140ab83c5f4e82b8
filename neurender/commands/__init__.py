"""The CLI's subcommands, one module per job; each has `register(subparsers) -> None`."""
