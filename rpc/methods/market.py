"""Market fund methods (lotus node/impl/market/market.go, chain/market/fundmanager.go).

MarketAddBalance and MarketWithdraw push a message from the wallet address to the storage market actor
(AddBalance with the address to credit; WithdrawBalance with the address and amount) and return its
CID. filpy keeps no off-chain fund reservations (Lotus's FundManager, MarketReserveFunds): nothing is
ever reserved, so MarketGetReserved is 0 and a withdrawal may take everything not locked in deals.
"""

from actors import builtin
from actors.market.types import MarketMethod, WithdrawBalanceParams
from chain.encoding.cid import CID
from chain.encoding.schema import BigInt
from chain.mpool.push import message_to_push
from chain.types.address import Address
from chain.types.fil import format_fil
from chain.types.message import Message
from chain.types.tipset import EMPTY_TSK
from node.fullnode import FullNode
from rpc.errors import RpcError
from rpc.methods.query import at_tipset, push
from rpc.registry import SIGN, method


def _market_message(wallet: Address, method: int, params: object, value: int) -> Message:
    return message_to_push(
        builtin.STORAGE_MARKET_ACTOR_ADDR, wallet, value=value, method=method, params=params
    )


@method("MarketAddBalance", perm=SIGN)
async def market_add_balance(node: FullNode, wallet: Address, address: Address, amount: BigInt) -> CID:
    """Move funds from a wallet address into the market escrow of an address (a client or a provider)."""
    if amount < 0:
        raise RpcError(f"cannot add a negative amount ({amount}) to the market")
    return await push(node, _market_message(wallet, MarketMethod.AddBalance, address, amount))


@method("MarketWithdraw", perm=SIGN)
async def market_withdraw(node: FullNode, wallet: Address, address: Address, amount: BigInt) -> CID:
    """Withdraw funds not locked in deals from an address's market escrow (sent by a wallet address
    the market lets act for it: the client itself, or the provider's owner or worker)."""
    if amount <= 0:
        raise RpcError(f"withdrawal amount must be positive, got {amount}")
    balance = await at_tipset(node, EMPTY_TSK, lambda ts: node.state.market_balance(address, ts))
    available = balance.escrow - balance.locked
    if amount > available:
        # Lotus FundManager's words (with nothing reserved).
        net = format_fil(available)
        raise RpcError(
            f"insufficient funds for withdrawal of {format_fil(amount)}: "
            f"net available ({net}) = available ({net}) - reserved (0 FIL)"
        )
    params = WithdrawBalanceParams(address, amount)
    return await push(node, _market_message(wallet, MarketMethod.WithdrawBalance, params, 0))


@method("MarketGetReserved", perm=SIGN)
async def market_get_reserved(node: FullNode, address: Address) -> BigInt:
    """Funds reserved for an address by deals in progress on this node (filpy reserves none: 0)."""
    return 0
