"""Methods every Lotus node answers that need no chain (lotus api/api_common.go, api_net.go's ID).

Permissions as Lotus's: Version, ID, Session, StartTime, Discover and AuthVerify are read; LogList and
LogSetLevel write; AuthNew and Shutdown admin.
"""

import logging
import uuid
from datetime import datetime
from typing import Annotated, Any, Final, Protocol

from chain.encoding.schema import Bytes, LotusJson, Name, Uint64
from chain.params import Policy
from rpc import auth
from rpc.errors import RpcError, answer_errors
from rpc.jsontypes import GoTime, JsonValue
from rpc.openrpc import document, filpy_version
from rpc.registry import ADMIN, READ, WRITE, CallContext, method


def api_version(major: int, minor: int, patch: int) -> int:
    """Lotus's packed version: major<<16 | minor<<8 | patch."""
    return major << 16 | minor << 8 | patch


# The API versions Lotus reports (api/version.go): the lotus CLI refuses a node whose v1 major.minor
# differs from its own.
FULL_API_VERSION_V1: Final = api_version(2, 3, 0)
FULL_API_VERSION_V0: Final = api_version(1, 5, 0)
AGENT: Final = "filpy"
# One per process, as Lotus's Session: a client that sees it change knows the node restarted.
SESSION: Final = str(uuid.uuid4())


class CommonNode(Protocol):
    """What these methods need of the node (node.fullnode.FullNode offers it)."""

    @property
    def policy(self) -> Policy: ...

    @property
    def peer_id(self) -> str: ...

    @property
    def start_time(self) -> datetime: ...

    def request_shutdown(self) -> None: ...


class APIVersion(LotusJson):
    """lotus api.APIVersion."""

    version: str
    api_version: Annotated[Uint64, Name("APIVersion")]
    block_delay: Uint64
    agent: str


@method("Version", perm=READ)
async def version(node: CommonNode, ctx: CallContext) -> APIVersion:
    """The node's version, its API version (2.3.0 on /rpc/v1, 1.5.0 on /rpc/v0) and block delay."""
    release = f"{filpy_version()}+{node.policy.network_name}"
    return APIVersion(
        version=release,
        api_version=FULL_API_VERSION_V1 if ctx.api == "v1" else FULL_API_VERSION_V0,
        block_delay=node.policy.block_delay_secs,
        agent=f"{AGENT}-{release}",
    )


@method("ID", perm=READ)
async def node_id(node: CommonNode) -> str:
    """The node's libp2p peer ID."""
    return node.peer_id


@method("Session", perm=READ)
async def session(node: CommonNode) -> str:
    """A UUID that stays the same while the node process runs."""
    return SESSION


@method("StartTime", perm=READ)
async def start_time(node: CommonNode) -> GoTime:
    """When the node started."""
    return node.start_time


@method("Shutdown", perm=ADMIN)
async def shutdown(node: CommonNode) -> None:
    """Ask the node to stop (it answers first)."""
    node.request_shutdown()


@method("AuthNew", perm=ADMIN)
async def auth_new(node: CommonNode, ctx: CallContext, perms: tuple[str, ...]) -> Bytes:
    """A new API token granting exactly the given permissions (the token's text as bytes)."""
    if ctx.secret is None:
        raise RpcError("this node has no API secret")
    with answer_errors(auth.AuthError):
        return auth.create_token(ctx.secret, perms).encode("ascii")


@method("AuthVerify", perm=READ)
async def auth_verify(node: CommonNode, ctx: CallContext, token: str) -> tuple[str, ...]:
    """The permissions a token grants."""
    if ctx.secret is None:
        raise RpcError("this node has no API secret")
    with answer_errors(auth.AuthError, prefix="JWT Verification failed"):
        return auth.verify_token(ctx.secret, token)


@method("Discover", perm=READ, aliases=("rpc.discover",))
async def discover(node: CommonNode, ctx: CallContext) -> JsonValue:
    """The OpenRPC document of this path's methods."""
    return document(ctx.registry, ctx.api)


# go-log's level names (zap's), and the stdlib levels they stand for.
LOG_LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "dpanic": logging.CRITICAL,
    "panic": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}


def _loggers() -> dict[str, logging.Logger]:
    manager: Any = logging.Logger.manager
    return {name: lg for name, lg in manager.loggerDict.items() if isinstance(lg, logging.Logger)}


@method("LogList", perm=WRITE)
async def log_list(node: CommonNode) -> tuple[str, ...]:
    """The names of the loggers whose level LogSetLevel sets."""
    return tuple(sorted(_loggers()))


@method("LogSetLevel", perm=WRITE)
async def log_set_level(node: CommonNode, subsystem: str, level: str) -> None:
    """Set a logger's level (debug, info, warn, error); subsystem "*" sets every logger's."""
    number = LOG_LEVELS.get(level.lower())
    if number is None:
        raise RpcError(f"unrecognized level: {level!r} (expected {', '.join(LOG_LEVELS)})")
    if subsystem == "*":
        for lg in _loggers().values():
            lg.setLevel(number)
        logging.getLogger().setLevel(number)
        return
    named = _loggers().get(subsystem)
    if named is None:
        raise RpcError(f"no such logger: {subsystem!r} (LogList names them)")
    named.setLevel(number)
