"""`filpy net ...`: the node's libp2p network, as `lotus net`.

    peers [--agent]                  NetPeers (and NetAgentVersion per peer): a table
    connect MULTIADDR|MINER ...      NetConnect: `/ip4/.../tcp/.../p2p/<peer ID>`, or a miner's address
                                     (its peer ID and addresses from StateMinerInfo)
    listen                           NetAddrsListen: the addresses to give other nodes, with /p2p/<ID>
    id                               ID: the node's peer ID

A node without a libp2p host (a single-node devnet) has no peers and no listen addresses, and refuses
`connect` saying so. `--json` prints the call's result as the node answered it.
"""

import argparse
from typing import TYPE_CHECKING, Any

from cli.subcommands import command, group

if TYPE_CHECKING:
    from cli.client import Session

P2P_PARTS = ("/p2p/", "/ipfs/")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = group(parser, "net_command")
    peers_parser = command(sub, "peers", peers, "the connected peers")
    peers_parser.add_argument("-a", "--agent", action="store_true", help="show each peer's agent")
    connect_parser = command(sub, "connect", connect, "connect to peers")
    connect_parser.add_argument(
        "peers", nargs="+", metavar="MULTIADDR|MINER", help="a peer's address ending in /p2p/<ID>, or a miner"
    )
    command(sub, "listen", listen, "the addresses the node listens on")
    command(sub, "id", peer_id, "the node's peer ID")


async def peers(s: "Session", args: argparse.Namespace) -> None:
    from cli.client import CliError

    found: list[dict[str, Any]] = await s.call("NetPeers")
    if s.out.json(found):
        return
    rows = []
    for peer in sorted(found, key=lambda p: str(p["ID"]), reverse=True):
        row = [peer["ID"], "\n".join(peer["Addrs"] or ())]
        if args.agent:
            try:
                row.append(await s.call("NetAgentVersion", peer["ID"]))
            except CliError as exc:
                row.append(f"({exc})")
        rows.append(row)
    s.out.table(["Peer", "Addresses", *(["Agent"] if args.agent else [])], rows)
    s.out.line(f"{len(found)} peer{'' if len(found) == 1 else 's'}")


def addr_info(text: str) -> dict[str, Any]:
    """A multiaddr ending in /p2p/<peer ID> as the AddrInfo NetConnect takes (a bare /p2p/<ID> has no
    addresses: the node must know where the peer is)."""
    from cli.client import CliError

    for part in P2P_PARTS:
        address, found, peer = text.rpartition(part)
        if found and peer and "/" not in peer:
            return {"ID": peer, "Addrs": [address] if address else []}
    raise CliError(f"{text!r} is not a peer's multiaddr: expected /ip4/<host>/tcp/<port>/p2p/<peer ID>")


async def _miner_addr_info(s: "Session", miner: str) -> dict[str, Any]:
    import base64

    from multiaddr import Multiaddr

    from cli.client import CliError

    info = await s.call("StateMinerInfo", miner, [])
    if not info.get("PeerId"):
        raise CliError(f"miner {miner} has no peer ID on chain")
    addrs = [str(Multiaddr(base64.b64decode(raw))) for raw in info.get("Multiaddrs") or ()]
    return {"ID": info["PeerId"], "Addrs": addrs}


async def connect(s: "Session", args: argparse.Namespace) -> None:
    from cli import values
    from cli.client import CliError

    answers = []
    for target in args.peers:
        if target.startswith("/"):
            info = addr_info(target)
        else:
            info = await _miner_addr_info(s, values.address(target, "miner address"))
        s.out.line(f"connect {info['ID']}: ", end="")
        try:
            answers.append(await s.call("NetConnect", info))
        except CliError:
            s.out.line("failure")
            raise
        s.out.line("success")
    s.out.json(answers)


async def listen(s: "Session", args: argparse.Namespace) -> None:
    info = await s.call("NetAddrsListen")
    if s.out.json(info):
        return
    for address in info["Addrs"] or ():
        s.out.line(f"{address}/p2p/{info['ID']}")


async def peer_id(s: "Session", args: argparse.Namespace) -> None:
    found = await s.call("ID")
    if not s.out.json(found):
        s.out.line(found)
