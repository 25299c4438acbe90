"""Random set/delete sequences replayed on a keyed collection (the AMT, the HAMT) and on a dict that
models it."""

from collections.abc import Iterable
from typing import Any, Protocol, TypeVar

from chain.encoding.cid import CID

K = TypeVar("K")
K_contra = TypeVar("K_contra", contravariant=True)


class Collection(Protocol[K_contra]):
    def set(self, key: K_contra, value: Any) -> None: ...

    def delete(self, key: K_contra) -> bool: ...

    def count(self) -> int: ...

    def flush(self) -> CID: ...


def replay(
    collection: Collection[K], operations: Iterable[tuple[bool, K, Any]], flush_every: int
) -> dict[K, Any]:
    """Apply each (set or delete, key, value) to collection and to a dict, which is returned: delete says
    whether the key was there and the count follows the dict. Every flush_every-th step flushes, so that
    clean and dirty nodes mix."""
    model: dict[K, Any] = {}
    for i, (is_set, key, value) in enumerate(operations):
        if is_set:
            collection.set(key, value)
            model[key] = value
        else:
            assert collection.delete(key) == (key in model)
            model.pop(key, None)
        assert collection.count() == len(model)
        if i % flush_every == 0:
            collection.flush()
    return model
