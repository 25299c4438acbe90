"""Soundness as a number: how likely a prover missing part of its replica is to pass one proof.

The model (docs/proofs.md "Soundness" says it in full):

- A **seal check** (verify_seal) draws `challenges` nodes, each uniformly among the n-1 nodes after
  node 0 and independently (sha256 of the replica ID, the seed and the challenge index). For each it
  opens the data and replica leaves, the node's column (its label in every layer) and its 14 parents'
  columns against the commitments, and recomputes the node's labels from the parents' committed labels
  and the replica from the data and the last label. The check is local: a node passes exactly when its
  own committed labels and replica follow from what is committed for its parents. A prover that
  committed (CommR) to a replica whose nodes are wrong at a fraction f passes one challenge with
  probability 1 - f and the whole check with (1 - f)^challenges, provided the seed was unknown when it
  committed: that is what the drand beacon gives and the mock beacon does not (with a known seed it can
  label only the challenged nodes, over garbage parents, and pass with f close to 1).
- A **Window PoSt** opens `challenges` leaves of each sector's replica (tree R) against CommRLast; a
  prover missing a fraction f of a sector's replica nodes passes that sector with (1 - f)^challenges
  unless it recomputes the missing nodes in time (below). **Winning PoSt** is the same with its count.
- What the DRG labelling adds: nothing to a seal check's number (the checks above are local). Against a
  prover that keeps the data but not the replica, it is the only defence of a PoSt: a replica node is
  the data plus a last-layer label that depends, through the i-1 edge and the expander edges, on the
  labels of nearly every node before it, so regenerating one costs about a seal of the sector prefix.
  At filpy's sizes that is a millisecond (2 KiB) to seconds (8 MiB) to minutes (512 MiB) per sector,
  well inside a challenge window: a vanilla PoSt here shows that the prover can produce the replica in
  time, not that it stores it (Filecoin's 32 GiB sectors take hours to seal, which is its argument).

Probabilities are computed in the continuous model (1 - f)^c; for a sector of n nodes with b wrong ones
the exact figure is (1 - b/(n-1))^c, node 0 being never challenged (at 2 KiB, n - 1 = 63).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from proofs.registered import POST_PARAMS, SEAL_PARAMS, PoStKind, RegisteredSealProof

FRACTIONS: Final = (0.01, 0.10, 0.50)


def pass_probability(missing: float, challenges: int) -> float:
    """The chance that `challenges` independent uniform challenges all miss a fraction `missing`."""
    if not 0.0 <= missing <= 1.0:
        raise ValueError(f"a missing fraction is in [0, 1], got {missing}")
    if challenges < 0:
        raise ValueError(f"a challenge count is not negative, got {challenges}")
    return (1.0 - missing) ** challenges


def challenges_needed(missing: float, target: float) -> int:
    """The fewest challenges that take the pass probability at `missing` below `target`."""
    if not 0.0 < missing < 1.0 or not 0.0 < target < 1.0:
        raise ValueError(f"need 0 < missing < 1 and 0 < target < 1, got {missing}, {target}")
    count = math.ceil(math.log(target) / math.log(1.0 - missing))
    while pass_probability(missing, count) >= target:  # float rounding at an exact power
        count += 1
    return count


def exact_seal_pass_probability(nodes: int, wrong: int, challenges: int) -> float:
    """A sector of `nodes` nodes with `wrong` of the challengeable ones (1..n-1) wrongly labelled."""
    if not 0 <= wrong <= nodes - 1:
        raise ValueError(f"between 0 and {nodes - 1} nodes can be wrong, not {wrong}")
    return (1.0 - wrong / (nodes - 1)) ** challenges


@dataclass(frozen=True, slots=True)
class SoundnessRow:
    """One proof type: its challenge count and the pass probability at each missing fraction."""

    proof: str
    sector_size: int
    challenges: int
    passes: tuple[float, ...]


def soundness_rows(fractions: Sequence[float] = FRACTIONS) -> list[SoundnessRow]:
    """Every supported proof type: the seal check, then Winning and Window PoSt (per sector)."""
    rows = []
    for proof, params in SEAL_PARAMS.items():
        name = RegisteredSealProof(proof).name
        passes = tuple(pass_probability(f, params.challenges) for f in fractions)
        rows.append(SoundnessRow(f"seal {int(proof)} {name}", params.sector_size, params.challenges, passes))
    for kind in (PoStKind.WINNING, PoStKind.WINDOW):
        for post in (p for p in POST_PARAMS.values() if p.kind == kind):
            passes = tuple(pass_probability(f, post.challenges) for f in fractions)
            rows.append(
                SoundnessRow(
                    f"{kind.value} PoSt {int(post.proof)} {post.proof.name}",
                    post.sector_size,
                    post.challenges,
                    passes,
                )
            )
    return rows


def _size(sector_size: int) -> str:
    return f"{sector_size >> 20} MiB" if sector_size >= 1 << 20 else f"{sector_size >> 10} KiB"


def _probability(p: float) -> str:
    return f"{p:.3f}" if p >= 0.01 else f"{p:.1e}"


def soundness_table(fractions: Sequence[float] = FRACTIONS) -> str:
    """The table docs/proofs.md prints (a Markdown table; tests check the docs hold this one)."""
    head = "| proof | sector | challenges | " + " | ".join(f"f = {f:.0%}" for f in fractions) + " |"
    rule = "| --- | --- | --- | " + " | ".join("---" for _ in fractions) + " |"
    lines = [head, rule]
    for row in soundness_rows(fractions):
        cells = " | ".join(_probability(p) for p in row.passes)
        lines.append(f"| {row.proof} | {_size(row.sector_size)} | {row.challenges} | {cells} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m proofs.soundness: the table, for docs/proofs.md
    import sys

    sys.stdout.write(soundness_table())
