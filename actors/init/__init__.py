"""The init actor: `types` (methods, params, returns), `actor` (the handlers and ACTOR). Its state
lives in chain/state/init_state.py, below the actors, because the state tree resolves addresses
through it."""
