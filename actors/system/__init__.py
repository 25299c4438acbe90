"""The system actor: `types` (methods, state, registry), `actor` (the constructor and ACTOR)."""
