"""Head changes: the path from one tipset to another, and how it is told to subscribers.

`reorg_ops` walks back from both tipsets to their common ancestor, as Lotus's store.ReorgOps: the
higher side steps to its parent (the right side on equal heights) until both sides meet. What the
walk left behind on the old side is reverted (newest first), what it left on the new side is applied
(oldest first).
"""

from collections.abc import Callable, Sequence
from typing import Annotated, Final, Literal

from chain.encoding.schema import STR_KIND, LotusJson, Name
from chain.types.tipset import TipSet, TipSetKey

REVERT: Final = "revert"
APPLY: Final = "apply"
CURRENT: Final = "current"
HeadChangeType = Literal["revert", "apply", "current"]


class NoCommonAncestor(ValueError):
    """Two tipsets whose chains do not meet: a different genesis, or a walk past the allowed depth."""


class HeadChange(LotusJson):
    """One step of a head change, as ChainNotify sends it (Lotus api.HeadChange:
    `{"Type": "current" | "apply" | "revert", "Val": TipSet}`)."""

    type: Annotated[HeadChangeType, STR_KIND]
    tipset: Annotated[TipSet, Name("Val")]


def reorg_ops(
    load: Callable[[TipSetKey], TipSet], old: TipSet, new: TipSet, *, max_revert: int | None = None
) -> tuple[list[TipSet], list[TipSet]]:
    """(tipsets to revert, newest first; tipsets to apply, oldest first) to move from old to new.

    max_revert bounds the walk on the old side: a path that would revert more tipsets raises
    NoCommonAncestor instead of walking the whole chain.
    """
    left, right = old, new
    revert: list[TipSet] = []
    apply: list[TipSet] = []
    while left.key != right.key:
        if left.height > right.height:
            if max_revert is not None and len(revert) >= max_revert:
                raise NoCommonAncestor(
                    f"no common ancestor of {old.key} (height {old.height}) and {new.key}"
                    f" (height {new.height}) within {max_revert} tipsets"
                )
            revert.append(left)
            left = _parent(load, left, old, new)
        else:
            apply.append(right)
            right = _parent(load, right, old, new)
    apply.reverse()
    return revert, apply


def _parent(load: Callable[[TipSetKey], TipSet], ts: TipSet, old: TipSet, new: TipSet) -> TipSet:
    if ts.height == 0:
        raise NoCommonAncestor(f"{old.key} and {new.key} do not share a genesis")
    return load(ts.parents)


def head_changes(revert: Sequence[TipSet], apply: Sequence[TipSet]) -> list[HeadChange]:
    """The notification of one head change: the reverts, then the applies (Lotus's order)."""
    return [HeadChange(REVERT, ts) for ts in revert] + [HeadChange(APPLY, ts) for ts in apply]
