"""The example genesis template (docs/genesis.example.json, node/genesis_template.py) and the genesis
built from it: shared by the genesis tests of the node and of the CLI."""

import json
from typing import Any

from node.genesis import Genesis, build_genesis
from node.genesis_template import example_template_json, parse_template


def example() -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(example_template_json())
    return raw


def build_example() -> Genesis:
    """The example's genesis (it seals the pre-sealed sectors: a module fixture's work)."""
    return build_genesis(parse_template(example()))
