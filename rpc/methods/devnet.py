"""Devnet controls, in filpy's own namespace (`Filpy.`): what tool builders ask of a local chain (Ganache
had them; Lotus devnets do not). They need a node that mines (`filpy devnet`, or `filpy daemon` with
mining.enabled); Faucet needs a node with a funded faucet account (a devnet's account 0).

- `Filpy.MineTipset()` (write): mine the next epoch now, whether the mining loop runs or is paused; on
  a devnet whose block timestamps follow the clock, at that epoch's time (at most one block delay
  away). Returns the new head, or null when no local miner won in MINE_ATTEMPTS epochs (null rounds).
- `Filpy.SetMining(bool)` (admin): pause or resume the mining loop. While paused, epochs still pass on
  the clock; on resuming, the miner catches up through them (node/mining/miner.py).
- `Filpy.Faucet(address, amount)` (admin): send amount attoFIL from the faucet account to address,
  through the message pool as MpoolPushMessage does (nonce, gas, signature); the message's CID.
"""

from chain.encoding.cid import CID
from chain.encoding.schema import BigInt
from chain.mpool.errors import MpoolError
from chain.mpool.push import SendSpec, message_to_push
from chain.types.address import Address
from chain.types.tipset import TipSet
from node.fullnode import FullNode, MiningControl
from rpc.errors import RpcError, answer_errors
from rpc.registry import ADMIN, WRITE, method

NAMESPACE = "Filpy"


def _mining(node: FullNode) -> MiningControl:
    if node.mining is None:
        raise RpcError(
            "this node does not mine: run `filpy devnet`, or `filpy daemon` with mining.enabled = true"
        )
    return node.mining


@method("MineTipset", perm=WRITE, namespace=NAMESPACE)
async def mine_tipset(node: FullNode) -> TipSet | None:
    """Mine the next epoch now (paused or not); the new head, or null when no local miner won."""
    return await _mining(node).mine_now()


@method("SetMining", perm=ADMIN, namespace=NAMESPACE)
async def set_mining(node: FullNode, enabled: bool) -> None:
    """Pause (false) or resume (true) the mining loop."""
    _mining(node).set_enabled(enabled)


@method("Faucet", perm=ADMIN, namespace=NAMESPACE)
async def faucet(node: FullNode, to: Address, amount: BigInt) -> CID:
    """Send amount (attoFIL) from the devnet's faucet account to an address; the message CID."""
    source = node.faucet
    if source is None:
        raise RpcError("this node has no faucet: Filpy.Faucet is for `filpy devnet`")
    if amount <= 0:
        raise RpcError(f"the amount must be positive, got {amount} attoFIL")
    msg = message_to_push(to, source, value=amount)
    with answer_errors(MpoolError, prefix="faucet"):
        signed = await node.run_sync(node.pusher.push_message, msg, SendSpec())
    return signed.cid()
