"""The reward actor: `types` (methods, params, returns), `state`, `schedule` (the minting curves),
`actor` (the handlers and ACTOR)."""
