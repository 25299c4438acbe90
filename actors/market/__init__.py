"""The storage market actor: deal escrow, publication, activation, payments and slashing."""

from actors.market.actor import ACTOR

__all__ = ["ACTOR"]
