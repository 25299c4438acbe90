"""Helpers shared by the built-in actors: integer HAMT keys, HAMT-backed sets and multimaps."""
