"""API tokens as Lotus issues them: JWT, HS256, payload {"Allow": ["read", "write", ...]}.

The secret is 32 random bytes kept in the repo's keystore (entry `auth-jwt-private`, type
`jwt-hmac-secret`); the repo's `token` file holds an admin token. A caller without a token gets
`read` (Lotus's default permissions); a token that does not verify is refused (HTTP 401).
A token's permissions are taken as listed: an "admin" token made by `create_token(secret,
perms_up_to(ADMIN))` lists all four, as `lotus auth create-token --perm admin` does.

A server checks a token's signature once per token string (`TokenCache`): Lotus's tokens carry no
expiry, so a token stays good as long as the secret, and there is no revocation list to consult. A
token that does carry `exp` (any HS256 signer can add one) is remembered only until then.
"""

import os
import secrets
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

import jwt

from chain.store.lru import Lru
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
    return _verify(secret, token)[0]


def _verify(secret: bytes, token: str) -> tuple[tuple[str, ...], float | None]:
    """The token's permissions and its `exp` (seconds since the epoch; None when it has none)."""
    try:
        payload: Any = jwt.decode(token, secret, algorithms=[_ALGORITHM], options={"verify_aud": False})
    except jwt.PyJWTError as exc:
        raise AuthError(f"invalid token: {exc}") from None
    if not isinstance(payload, dict):
        return (), None
    exp = payload.get("exp")  # jwt.decode has checked that it is a number and not past
    expires = float(exp) if exp is not None else None
    allow = payload.get("Allow")
    if allow is None:
        return (), expires
    if not isinstance(allow, list) or not all(isinstance(p, str) for p in allow):
        raise AuthError("invalid token: 'Allow' must be a list of permission names")
    return tuple(allow), expires


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


class TokenCache:
    """A server's callers' permissions by token string: a signature is checked the first time its token
    is seen, and the answer kept (at most `size` tokens, the least recently used dropped first) until
    the token's `exp` if it has one. A token that does not verify is never kept: it is checked, and
    refused, each time. The secret is fixed for the cache's life, as it is for the server's."""

    def __init__(self, secret: bytes | None, size: int, clock: Callable[[], float] = time.time) -> None:
        self.secret = secret
        self._clock = clock
        self._known: Lru[str, tuple[frozenset[str], float | None]] = Lru(size)

    def perms(self, token: str | None) -> frozenset[str]:
        """What the caller with this token may do: read without a token, the token's permissions with one;
        AuthError when it does not verify."""
        if token is None:
            return DEFAULT_PERMS
        known = self._known.get(token)
        if known is not None:
            perms, expires = known
            if expires is None or self._clock() < expires:
                return perms
        if self.secret is None:
            raise AuthError("this node has no API secret: tokens cannot be checked")
        allow, expires = _verify(self.secret, token)
        perms = frozenset(allow)
        self._known.put(token, (perms, expires))
        return perms


def write_token_file(path: Path, token: str) -> None:
    """The repo's `token` file (0600), written atomically."""
    write_atomic(Path(path), token.encode("ascii"), mode=0o600)
    os.chmod(path, 0o600)
