"""`filpy client find ROOT` when no provider offers the data: the empty table and a sentence that says so."""

import argparse
import io
from typing import Any

from cli import client_commands
from cli.output import Output

ROOT = "bafkreidoyd3m2skm4ftuefpsuaqnw4zwxh4fchc26mqtlhwv4msoyte7ei"


class NoOffers:
    """What find needs of a Session: ClientFindData answering no offer, and where it prints."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.out = Output(json_mode=False, file=self.stream)
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    async def call(self, method: str, *params: Any) -> Any:
        self.calls.append((method, params))
        return []


async def test_no_offer_is_said_in_words() -> None:
    session = NoOffers()
    await client_commands.find(session, argparse.Namespace(root=ROOT))  # type: ignore[arg-type]
    assert session.calls == [("ClientFindData", ({"/": ROOT}, None))]
    lines = session.stream.getvalue().splitlines()
    assert lines[0].split() == ["Miner", "Peer", "Size", "Price", "Unseal", "price", "Error"]
    assert lines[-1] == "0 offers: none of the providers this client made deals with has the data"
