"""The OpenRPC document: well formed, the registry's methods with their param counts, schemas that
resolve; and the methods list in docs/rpc.md up to date with the registry."""

from typing import Any

import orjson
import pytest

from rpc import docgen
from rpc.methods import full_node_registry
from rpc.openrpc import document
from rpc.registry import APIS, Api
from tests.rpc.toy import TOY


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        out = [node["$ref"]] if "$ref" in node else []
        for value in node.values():
            out += _refs(value)
        return out
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    return []


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("registry", [full_node_registry(), TOY], ids=["full", "toy"])
def test_document_is_well_formed(api: Api, registry: Any) -> None:
    doc = orjson.loads(orjson.dumps(document(registry, api)))  # plain JSON
    assert doc["openrpc"] == "1.2.6"
    assert doc["info"]["title"] and doc["info"]["version"]
    methods = registry.methods(api)
    assert [m["name"] for m in doc["methods"]] == [m.full_name for m in methods]
    for entry, m in zip(doc["methods"], methods, strict=True):
        assert entry["paramStructure"] == "by-position"
        assert len(entry["params"]) == len(m.params)
        assert [p["name"] for p in entry["params"]] == [f"p{i}" for i in range(1, len(m.params) + 1)]
        for p in entry["params"]:
            assert p["required"] is True and isinstance(p["schema"], dict) and p["description"]
        assert set(entry["result"]) >= {"name", "schema", "required"}
        assert entry["x-permission"] == m.perm.value and entry["x-channel"] == m.channel
        assert entry["summary"] == m.description
    components = doc["components"]["schemas"]
    for ref in _refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in components


def test_declared_types_are_objects_of_go_field_names() -> None:
    doc = document(TOY, "v1")
    by_name = {m["name"]: m for m in doc["methods"]}
    version = by_name["Filecoin.Version"]
    assert version["result"]["schema"] == {"$ref": "#/components/schemas/APIVersion"}
    api_version = doc["components"]["schemas"]["APIVersion"]
    assert api_version["type"] == "object"
    assert list(api_version["properties"]) == ["Version", "APIVersion", "BlockDelay", "Agent"]
    assert api_version["properties"]["APIVersion"]["type"] == "integer"
    echo = by_name["Filecoin.ToyEcho"]["params"]
    assert echo[0]["schema"]["properties"]["/"] == {"type": "string"}
    assert echo[1]["schema"]["type"] == "string" and echo[1]["description"] == "BigInt"
    assert echo[2]["schema"]["oneOf"][0] == {"$ref": "#/components/schemas/Address"}
    assert doc["components"]["schemas"]["Address"]["type"] == "string"
    void = by_name["Filecoin.ToyVoid"]["result"]
    assert void["name"] == "Null" and void["schema"] == {"type": ["null"]}
    ticks = by_name["Filecoin.ToyTicks"]
    assert ticks["x-channel"] is True and ticks["result"]["schema"]["type"] == "integer"


def test_docs_methods_list_is_generated_from_the_registry() -> None:
    text = docgen.DOC.read_text()
    assert docgen.render(text, full_node_registry()) == text, "run: python -m rpc.docgen"
    for m in full_node_registry().methods("v1"):
        assert f"`{m.full_name}`" in text
