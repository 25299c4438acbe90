"""Piece commitments, piece inclusion proofs, stacked-DRG sealing and PoSt: pure functions over bytes.

Nothing here imports the rest of filpy (see docs/architecture.md), so the verifiers can be used and
tested on their own.
"""
