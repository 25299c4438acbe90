"""Helpers shared by the built-in actors: integer HAMT keys, HAMT sets and multimaps, address resolution."""
