"""The `filpy` command: the layer above rpc/ and node/ (docs/node.md). Subcommand modules are imported
only when their command runs (cli/main.py)."""
