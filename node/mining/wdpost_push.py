"""Pushing a Window PoSt service's message (a PoSt, a fault or recovery declaration): a refusal by the
pool is kept as the run's last error and logged, never raised, so the service tries again at a later
head instead of failing."""

from typing import Any, Protocol

import structlog
import trio

from chain.mpool.push import SendSpec
from chain.types.message import Message, SignedMessage
from node.daemon import describe_error
from node.mining.chain_api import MessagePush

log = structlog.get_logger("wdpost")


class _Run(Protocol):
    last_error: str | None


async def push_or_note(
    pusher: MessagePush, message: Message, max_fee: int, run: _Run, event: str, **fields: Any
) -> SignedMessage | None:
    """The message pushed (off the event loop, fees capped at max_fee), or None when the pool refused
    it: then run.last_error says why and `event` is logged with `fields`."""
    try:
        return await trio.to_thread.run_sync(pusher.push_message, message, SendSpec(max_fee=max_fee))
    except Exception as exc:
        run.last_error = f"push refused: {describe_error(exc)}"
        log.error(event, error=describe_error(exc), **fields)
        return None
