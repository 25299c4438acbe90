"""The cron actor: `types` (methods, state, params, genesis entries), `actor` (the handlers and
ACTOR)."""
