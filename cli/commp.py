"""`filpy commp FILE`: the piece CID and sizes of a file, worded as `lotus client commP` prints them.

Lotus prints the piece CID, the unpadded piece size (human-readable, then in bytes); we add the padded
size, the payload size and the FRC-0069 v2 piece CID. Any file is accepted (Lotus insists on a CAR file
because it will retrieve it later; computing the commitment does not need that).
"""

import argparse
import os
import sys
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from chain.encoding.commcid import piece_cid_v1, piece_cid_v2
from cli.output import size_str
from proofs.commp import PieceCommitment, PieceError, commp_of_stream

PROGRESS_THRESHOLD = 4 << 20  # smaller files finish before a bar would be worth drawing


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="file whose piece commitment to compute")
    parser.add_argument(
        "--threads",
        type=int,
        default=min(os.cpu_count() or 1, 8),
        help="hashing threads (default: one per core, at most 8)",
    )
    parser.add_argument("--no-progress", action="store_true", help="never draw a progress bar")
    parser.set_defaults(handler=run)


def format_result(result: PieceCommitment) -> str:
    # fmt.Println("CID: ", x) in Go puts a space between its operands: hence the double spaces.
    return (
        f"CID:  {piece_cid_v1(result.commitment)}\n"
        f"Piece size:  {size_str(result.unpadded_size)}\n"
        f"Piece size in bytes:  {result.unpadded_size}\n"
        f"Padded piece size:  {result.padded_size}\n"
        f"Payload size:  {result.payload_size}\n"
        f"Piece CID v2:  {piece_cid_v2(result.commitment, result.payload_size)}\n"
    )


def compute(path: Path, *, threads: int, console: Console | None) -> PieceCommitment:
    """CommP of the file at path; draws a progress bar on console for files over PROGRESS_THRESHOLD."""
    size = path.stat().st_size
    with path.open("rb", buffering=0) as stream:
        if console is None or size <= PROGRESS_THRESHOLD:
            return commp_of_stream(stream, threads=threads)
        columns = (
            TextColumn("[bold]commp[/bold] {task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task(path.name, total=size)
            return commp_of_stream(stream, threads=threads, progress=lambda n: progress.advance(task, n))


def run(args: argparse.Namespace, out: TextIO | None = None, console: Console | None = None) -> int:
    out = out or sys.stdout
    path: Path = args.file
    if args.threads < 1:
        sys.stderr.write(f"filpy commp: --threads must be at least 1, got {args.threads}\n")
        return 2
    if not path.is_file():
        # A directory (or a socket, a fifo) exists: "no such file" would send the user looking for it.
        what = "no such file" if not path.exists() else "is a directory" if path.is_dir() else "not a file"
        sys.stderr.write(f"filpy commp: {path}: {what}\n")
        return 1
    if console is None and not args.no_progress:
        console = Console(stderr=True)
    try:
        result = compute(path, threads=args.threads, console=None if args.no_progress else console)
    except (OSError, PieceError) as exc:
        sys.stderr.write(f"filpy commp: {path}: {exc}\n")
        return 1
    out.write(format_result(result))
    return 0
