"""A DAG-JSON reader for the vectors: bytes as {"/": {"bytes": b64}}, links as {"/": cid}, big ints exact."""

import base64
import json
from typing import Any

from chain.encoding.cid import CID


def _convert(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"/"}:
            inner = value["/"]
            if isinstance(inner, str):
                return CID.parse(inner)
            if isinstance(inner, dict) and set(inner) == {"bytes"}:
                text = inner["bytes"]
                return base64.b64decode(text + "=" * (-len(text) % 4))
        return {k: _convert(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_convert(v) for v in value]
    return value


def loads(text: str) -> Any:
    return _convert(json.loads(text))
