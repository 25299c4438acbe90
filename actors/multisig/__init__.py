"""The multisig actor: `types` (methods, state, params, returns), `actor` (the handlers and ACTOR)."""
