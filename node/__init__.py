"""Wiring and services: the daemon, its configuration and repo, genesis, wallet (the CLI is cli/)."""
