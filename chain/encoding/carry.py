"""Values of one declared type made from another's fields of the same name.

A view (an RPC answer, a record written to disk) often holds some of the fields of a node or chain type
under the same names and with the same meaning. Carrying them over by name from the dataclass
declarations, instead of writing `x=src.x` once per field, keeps the field list in one place: a field
added to both types is carried without another line. Use it only where a name means the same thing on
both sides; a field whose name or meaning differs is given explicitly.
"""

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def carried(cls: type[T], *sources: object, **given: Any) -> T:
    """An instance of the dataclass cls: the fields in `given` as given, every other field from the
    first source with an attribute of its name. A field that neither gives keeps its declared default;
    one without a default raises TypeError naming it, so a field renamed on one side fails here
    instead of being filled from the wrong place."""
    declared = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]  # cls is a dataclass (declared types are made dataclasses at run time)
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise TypeError(f"{cls.__name__} declares no field {', '.join(unknown)}")
    values = dict(given)
    missing = []
    for name, f in declared.items():
        if name in values:
            continue
        source = next((s for s in sources if hasattr(s, name)), None)
        if source is not None:
            values[name] = getattr(source, name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            missing.append(name)
    if missing:
        kinds = ", ".join(type(s).__name__ for s in sources) or "no source"
        raise TypeError(f"{cls.__name__}: no value for {', '.join(missing)} (given, nor in {kinds})")
    return cls(**values)
