"""The cron actor (f03): calls a fixed list of actor methods at the end of every epoch."""

import structlog

from actors import builtin
from actors.cron.types import ConstructorParams, CronMethod, CronState
from actors.dispatch import ActorDef, exported, exports
from chain.vm.runtime import Runtime

_log = structlog.get_logger(__name__)


@exports(CronMethod.Constructor)
def constructor(rt: Runtime, params: ConstructorParams) -> None:
    rt.validate_immediate_caller_is(builtin.SYSTEM_ACTOR_ADDR)
    rt.set_state(CronState(params.entries))


@exports(CronMethod.EpochTick)
def epoch_tick(rt: Runtime) -> None:
    """Call every entry with no params and no value; a failing entry is logged and skipped."""
    rt.validate_immediate_caller_is(builtin.SYSTEM_ACTOR_ADDR)
    for entry in rt.state(CronState).entries:
        result = rt.send(entry.receiver, entry.method_num, b"", 0)
        if not result.ok:
            _log.error(
                "cron entry failed",
                receiver=str(entry.receiver),
                method=entry.method_num,
                exit_code=int(result.exit_code),
                epoch=rt.curr_epoch,
            )


ACTOR = ActorDef.of(builtin.CRON_ACTOR_CODE, "cron", CronState, exported(CronMethod, globals()))
