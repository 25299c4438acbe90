"""Wiring and services: the daemon, its configuration and repo, the CLI, genesis, wallet."""
