"""The storage power actor: `types` (methods, params, returns), `state` (claims, cron queue, totals),
`actor` (the handlers and ACTOR)."""
