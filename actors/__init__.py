"""The built-in actors: one module per actor, each a state dataclass and a table of methods."""
