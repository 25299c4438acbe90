"""What the Window PoSt services do with a failure of one deadline's work (a step that raised, a
message the pool refused): it is kept as the run's last error (shown by `filpy miner proving`) and
logged, never raised, so the service goes on and tries again at a later head."""

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


def note_failure(run: _Run, exc: Exception, event: str, **fields: Any) -> None:
    """A step of run raised exc: kept as its last error, `event` logged with fields and the traceback."""
    run.last_error = describe_error(exc)
    log.error(event, error=run.last_error, exc_info=exc, **fields)


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
