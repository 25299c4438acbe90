"""The account actor: `types` (methods, state, params), `actor` (the handlers and ACTOR)."""
