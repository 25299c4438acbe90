"""API tokens as Lotus issues them: JWT, HS256, payload {"Allow": ["read", "write", ...]}.

The secret is 32 random bytes kept in the repo's keystore (entry `auth-jwt-private`, type
`jwt-hmac-secret`); the repo's `token` file holds an admin token. A caller without a token gets
`read` (Lotus's default permissions); a token that does not verify is refused (HTTP 401).
A token's permissions are taken as listed: an "admin" token made by `create_token(secret,
perms_up_to(ADMIN))` lists all four, as `lotus auth create-token --perm admin` does.
"""

import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import jwt

from node.atomic import write_atomic
from rpc.registry import ALL_PERMS, READ, Perm

SECRET_BYTES: Final = 32
KEYSTORE_NAME: Final = "auth-jwt-private"
KEY_TYPE: Final = "jwt-hmac-secret"
DEFAULT_PERMS: Final = frozenset({READ.value})
_ALGORITHM: Final = "HS256"


class AuthError(Exception):
    """A token that does not verify, or a request for permissions that do not exist."""


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def perms_up_to(perm: str) -> tuple[str, ...]:
    """The permissions a `--perm` level grants: that one and every weaker one (Lotus's CLI)."""
    if perm not in ALL_PERMS:
        raise AuthError(f"unknown permission {perm!r}: expected one of {', '.join(ALL_PERMS)}")
    return ALL_PERMS[: ALL_PERMS.index(perm) + 1]


def check_perms(perms: Iterable[str]) -> tuple[str, ...]:
    out = tuple(perms)
    for perm in out:
        if perm not in ALL_PERMS:
            raise AuthError(f"unknown permission {perm!r}: expected one of {', '.join(ALL_PERMS)}")
    return out


def create_token(secret: bytes, perms: Iterable[str | Perm]) -> str:
    """A token allowing exactly `perms`."""
    allow = list(check_perms(str(p) for p in perms))
    return jwt.encode({"Allow": allow}, secret, algorithm=_ALGORITHM)


def verify_token(secret: bytes, token: str) -> tuple[str, ...]:
    """The permissions a token grants, as listed; AuthError when its signature or payload is wrong."""
    try:
        payload: Any = jwt.decode(token, secret, algorithms=[_ALGORITHM], options={"verify_aud": False})
    except jwt.PyJWTError as exc:
        raise AuthError(f"invalid token: {exc}") from None
    allow = payload.get("Allow") if isinstance(payload, dict) else None
    if allow is None:
        return ()
    if not isinstance(allow, list) or not all(isinstance(p, str) for p in allow):
        raise AuthError("invalid token: 'Allow' must be a list of permission names")
    return tuple(allow)


def bearer_token(authorization: str | None, query_token: str | None) -> str | None:
    """The token of a request: `Authorization: Bearer <t>`, else `?token=<t>` (as go-jsonrpc's auth
    handler). An Authorization header without the Bearer prefix is an AuthError."""
    if authorization:
        if not authorization.startswith("Bearer "):
            raise AuthError("the Authorization header must be 'Bearer <token>'")
        return authorization[len("Bearer ") :].strip()
    if query_token:
        return query_token
    return None


def caller_perms(secret: bytes | None, token: str | None) -> frozenset[str]:
    """What a caller may do: read without a token, the token's permissions with one."""
    if token is None:
        return DEFAULT_PERMS
    if secret is None:
        raise AuthError("this node has no API secret: tokens cannot be checked")
    return frozenset(verify_token(secret, token))


def write_token_file(path: Path, token: str) -> None:
    """The repo's `token` file (0600), written atomically."""
    write_atomic(Path(path), token.encode("ascii"), mode=0o600)
    os.chmod(path, 0o600)
