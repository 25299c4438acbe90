"""A paid retrieval transfer between a provider's gate and a client's payer over in-memory channels,
for the tests that check the payment rules with and without a real payment channel behind them."""

from collections.abc import AsyncIterator

import trio

from node.markets.retrieval_payment import (
    ClientPayments,
    ProviderPayments,
    RetrievalParams,
    client_transfer,
    provider_transfer,
)

PARAMS = RetrievalParams(
    price_per_byte=2, payment_interval=100, payment_interval_increase=50, unseal_price=11
)
CHUNK = 70  # below every payment interval, so the provider's pauses fall inside the stream


class End:
    """One side of an in-memory message transport; what it sends also goes to log when one is given."""

    def __init__(
        self,
        out: trio.MemorySendChannel[object],
        into: trio.MemoryReceiveChannel[object],
        log: list[object] | None = None,
    ) -> None:
        self.out, self.into, self.log = out, into, log

    async def send(self, message: object) -> None:
        if self.log is not None:
            self.log.append(message)
        await self.out.send(message)

    async def receive(self) -> object:
        return await self.into.receive()


async def transfer(
    gate: ProviderPayments,
    payer: ClientPayments,
    data: bytes,
    *,
    seconds: float,
    log: list[object] | None = None,
    payment_timeout: float = 60.0,
) -> bytes:
    """What the client receives when the provider streams data through gate, paid by payer."""
    to_client_send, to_client_recv = trio.open_memory_channel[object](100)
    to_provider_send, to_provider_recv = trio.open_memory_channel[object](100)
    got = bytearray()

    async def sink(chunk: bytes) -> None:
        got.extend(chunk)

    async def chunks() -> AsyncIterator[bytes]:
        for at in range(0, len(data), CHUNK):
            yield data[at : at + CHUNK]

    with trio.fail_after(seconds):
        async with trio.open_nursery() as nursery:
            provider_end = End(to_client_send, to_provider_recv, log)
            nursery.start_soon(
                lambda: provider_transfer(gate, chunks(), provider_end, payment_timeout=payment_timeout)
            )
            await client_transfer(payer, End(to_provider_send, to_client_recv, log), sink)
    return bytes(got)
