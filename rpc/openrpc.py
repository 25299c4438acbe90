"""The OpenRPC 1.2.6 document of a path, generated from the registry (`Filecoin.Discover`).

Methods appear as Lotus's `build/openrpc/full.json` lists them: by position, params named p1..pN
(the description is the param's type, the summary its handler name), one result. JSON schemas come
from the kinds: numbers, decimal strings for big integers, base64 strings for bytes, `{"/": cid}`
objects for CIDs, and for each declared type an object of its Go field names, defined once under
`components.schemas` and referred to with `$ref`. A hand-written type (Address, TipSet, ...) is
described by its `json_schema()` classmethod when it has one, else by a short built-in schema or its
name. Extensions: `x-permission` (read/write/sign/admin) and `x-channel` (a WebSocket subscription).
"""

from importlib import metadata
from typing import Any, Final

from chain.encoding import schema as s
from chain.types.address import Address
from chain.types.tipset import TipSetKey
from rpc.registry import Api, Method, Registry, type_name

OPENRPC_VERSION: Final = "1.2.6"
_CID_SCHEMA: Final = {
    "title": "Content Identifier",
    "type": "object",
    "properties": {"/": {"type": "string"}},
    "required": ["/"],
    "additionalProperties": False,
}


def filpy_version() -> str:
    try:
        return metadata.version("filpy")
    except metadata.PackageNotFoundError:
        return "0.0.0"


class _Schemas:
    """JSON schemas of kinds; declared classes go to `components` once each."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def of(self, kind: s.Kind) -> dict[str, Any]:
        custom = getattr(kind, "json_schema", None)
        if custom is not None:
            out: dict[str, Any] = custom()
            return out
        if isinstance(kind, s.IntKind):
            return {"title": "number", "type": "integer", "minimum": kind.lo, "maximum": kind.hi}
        if isinstance(kind, s.BigIntKind):
            return {"title": "big integer", "type": "string", "pattern": "^-?[0-9]+$"}
        if isinstance(kind, s.BytesKind):
            return {"type": ["string", "null"], "media": {"binaryEncoding": "base64"}}
        if isinstance(kind, s.ScalarKind):
            return {"type": "boolean" if kind.python_type is bool else "string"}
        if isinstance(kind, s.CidKind):
            return dict(_CID_SCHEMA)
        if isinstance(kind, s.EnumKind):
            return {"title": kind.enum.__name__, "type": "integer", "enum": [int(m) for m in kind.enum]}
        if isinstance(kind, s.OptionalKind):
            return {"oneOf": [self.of(kind.inner), {"type": "null"}]}
        if isinstance(kind, s.ListKind):
            return {"type": ["array", "null"], "items": self.of(kind.inner), "maxItems": kind.max_len}
        if isinstance(kind, s.NestedKind | s.JsonOnlyKind):
            return self._class(kind.cls)
        return {}

    def _class(self, cls: Any) -> dict[str, Any]:
        name = cls.__name__
        ref = {"$ref": f"#/components/schemas/{name}"}
        if name in self.components:
            return ref
        custom = getattr(cls, "json_schema", None)
        if custom is not None:
            self.components[name] = custom()
        elif cls is Address:
            self.components[name] = {"title": "Address", "type": "string", "examples": ["f01234"]}
        elif cls is TipSetKey:
            self.components[name] = {
                "title": "TipSetKey",
                "type": ["array", "null"],
                "items": dict(_CID_SCHEMA),
            }
        elif isinstance(cls, type) and issubclass(cls, s.LotusJson):
            self.components[name] = {}  # placeholder: a type that contains itself refers to it
            props = {f.go: self.of(f.kind) for f in s.fields(cls)}
            required = [f.go for f in s.fields(cls) if not f.has_default]
            self.components[name] = {
                "title": name,
                "type": "object",
                "properties": props,
                "required": required,
            }
        else:
            self.components[name] = {"title": name}
        return ref


def _result(m: Method, schemas: _Schemas) -> dict[str, Any]:
    if m.result is None:
        return {
            "name": "Null",
            "description": "Null",
            "schema": {"type": ["null"]},
            "required": True,
            "deprecated": False,
        }
    label = type_name(m.result_annotation)
    return {
        "name": label,
        "description": label,
        "schema": schemas.of(m.result),
        "required": True,
        "deprecated": False,
    }


def method_entry(m: Method, schemas: _Schemas) -> dict[str, Any]:
    return {
        "name": m.full_name,
        "summary": m.description,
        "description": m.description,
        "paramStructure": "by-position",
        "params": [
            {
                "name": f"p{i}",
                "description": type_name(p.annotation),
                "summary": p.name,
                "schema": schemas.of(p.kind),
                "required": True,
                "deprecated": False,
            }
            for i, p in enumerate(m.params, 1)
        ],
        "result": _result(m, schemas),
        "deprecated": False,
        "x-permission": m.perm.value,
        "x-channel": m.channel,
    }


def document(registry: Registry, api: Api) -> dict[str, Any]:
    schemas = _Schemas()
    methods = [method_entry(m, schemas) for m in registry.methods(api)]
    return {
        "openrpc": OPENRPC_VERSION,
        "info": {"title": f"filpy RPC API ({api})", "version": filpy_version()},
        "methods": methods,
        "components": {"schemas": dict(sorted(schemas.components.items()))},
    }
