"""The full node's RPC methods, one module per area; each declares its methods on rpc.registry.FULL_NODE."""

from rpc.registry import FULL_NODE, Registry


def full_node_registry() -> Registry:
    """Every full-node method (importing the method modules declares them)."""
    from rpc.methods import (  # noqa: F401
        beacon,
        chain,
        client,
        common,
        devnet,
        gas,
        market,
        miner,
        mpool,
        msig,
        net,
        paych,
        proving,
        state,
        state_market,
        state_miner,
        sync,
        wallet,
    )

    return FULL_NODE
