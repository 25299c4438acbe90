"""Resolving addresses to actor IDs (and codes), as the built-in actors do before acting on them."""

from actors.dispatch import METHOD_SEND
from actors.sends import send_or_abort
from chain.encoding.cid import CID
from chain.types.address import Address
from chain.vm.exitcode import ActorError, ExitCode, illegal_argument
from chain.vm.runtime import Runtime


def resolve_to_actor_id(rt: Runtime, address: Address) -> Address:
    """The ID address of address. A key address with no actor yet gets one by a zero-value send (which
    makes the VM create its account), as builtin-actors' resolve_to_actor_id does."""
    resolved = rt.resolve_address(address)
    if resolved is not None:
        return resolved
    send_or_abort(rt, address, METHOD_SEND, None, 0, f"send of zero balance to {address}")
    resolved = rt.resolve_address(address)
    if resolved is None:
        raise illegal_argument(f"failed to resolve or initialize address {address}")
    return resolved


def resolve_existing(
    rt: Runtime, address: Address, missing: ExitCode = ExitCode.ErrIllegalArgument
) -> tuple[Address, CID]:
    """The ID address and code of the actor at address, which must exist (`missing` otherwise)."""
    resolved = rt.resolve_address(address)
    if resolved is None:
        raise ActorError(missing, f"failed to resolve address {address}")
    code = rt.get_actor_code_cid(resolved)
    if code is None:
        raise ActorError(missing, f"no code for address {resolved}")
    return resolved, code
