"""The API's views of node values: most of an API type's fields are a node type's own under Lotus's
names, so they are carried over by name from the declaration instead of listed again field by field."""

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def carried(cls: type[T], *sources: object, **given: Any) -> T:
    """An instance of the dataclass cls: the fields in `given` as given, every other field from the
    first source with an attribute of its name (a field none has keeps its default)."""
    values = dict(given)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]  # declared types are made dataclasses at run time
        if f.name in values or not f.init:
            continue
        source = next((s for s in sources if hasattr(s, f.name)), None)
        if source is not None:
            values[f.name] = getattr(source, f.name)
    return cls(**values)
