"""The storage market actor: `types` (methods, deals, params), `state` (the tables and their
bookkeeping), `policy` (deal bounds), `actor` (the handlers and ACTOR)."""
