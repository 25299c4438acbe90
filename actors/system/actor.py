"""The system actor (f00): the sender of implicit messages, holding the registry of built-in actors.

The constructor writes the registry (builtin-actors writes an empty list and Lotus's genesis fills in
the bundle's).
"""

from actors import builtin
from actors.dispatch import ActorDef, exported, exports
from actors.system.types import SystemMethod, SystemState, registry_cbor
from chain.store.blockstore import put_cbor
from chain.vm.runtime import Runtime


@exports(SystemMethod.Constructor)
def constructor(rt: Runtime) -> None:
    rt.validate_immediate_caller_is(builtin.SYSTEM_ACTOR_ADDR)
    rt.set_state(SystemState(put_cbor(rt.store, registry_cbor())))


ACTOR = ActorDef.of(builtin.SYSTEM_ACTOR_CODE, "system", SystemState, exported(SystemMethod, globals()))
