"""The payment channel actor: `types` (methods, state, vouchers, params), `actor` (the handlers and
ACTOR)."""
