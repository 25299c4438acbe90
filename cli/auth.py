"""`filpy auth create-token|api-info --perm read|write|sign|admin`: a new API token (AuthNew), as
`lotus auth`. As in Lotus a permission brings the weaker ones with it: `--perm sign` makes a token
for read, write and sign. `api-info` prints it as `FULLNODE_API_INFO=<token>:<multiaddr>` for the node
the command talked to. Making a token takes the admin permission (the repo's `token` file has it).
`--json` prints AuthNew's result (the token's bytes, base64).
"""

import argparse
from typing import TYPE_CHECKING, Final

from cli.subcommands import command, group

if TYPE_CHECKING:
    from cli.client import Session

# Lotus's api.AllPermissions, weakest first (rpc/registry.py Perm, which this light module does not import).
PERMISSIONS: Final = ("read", "write", "sign", "admin")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = group(parser, "auth_command")
    for name, action, help_text in (
        ("create-token", create_token, "create a token"),
        ("api-info", api_info, "print FULLNODE_API_INFO with a new token"),
    ):
        sub_parser = command(sub, name, action, help_text)
        sub_parser.add_argument(
            "--perm", required=True, choices=PERMISSIONS, help="the token's permission (and the weaker ones)"
        )


async def _new_token(s: "Session", perm: str) -> tuple[str, str]:
    """AuthNew's result and the token's text."""
    import base64

    granted = PERMISSIONS[: PERMISSIONS.index(perm) + 1]
    raw: str = await s.call("AuthNew", list(granted))
    return raw, base64.b64decode(raw).decode("ascii")


async def create_token(s: "Session", args: argparse.Namespace) -> None:
    raw, token = await _new_token(s, args.perm)
    if not s.out.json(raw):
        s.out.line(token)


async def api_info(s: "Session", args: argparse.Namespace) -> None:
    from urllib.parse import urlsplit

    from node.repo import api_multiaddr

    raw, token = await _new_token(s, args.perm)
    if not s.out.json(raw):
        s.out.line(f"FULLNODE_API_INFO={token}:{api_multiaddr(urlsplit(s.endpoint.url).netloc)}")
