"""structlog configuration: key=value lines for people, JSON lines with --log-json.

Records of the libraries that log through the standard library (py-libp2p, hypercorn) are rendered
the same way: Python's own last-resort handler would print them as bare, sometimes multi-line text in
the middle of the node's lines, breaking `--log-json` for whoever parses it.
"""

import logging
import sys

import structlog


def _stderr_logger(*_args: object) -> structlog.PrintLogger:
    return structlog.PrintLogger(sys.stderr)


class _StderrHandler(logging.Handler):
    """Writes each record to the sys.stderr of the moment, as structlog's PrintLogger does above."""

    def emit(self, record: logging.LogRecord) -> None:
        if _peer_lacks_protocol(record):
            # py-libp2p logs every failed stream open as an error, also a peer's plain answer that it does
            # not speak the protocol (a markets host has no gossipsub), which its caller handles: dropped
            return
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # logging's contract: a handler reports its own failure and goes on
            self.handleError(record)


def _peer_lacks_protocol(record: logging.LogRecord) -> bool:
    return record.name.endswith("host.basic_host") and "protocols not supported" in record.getMessage()


def configure(*, json: bool = False, level: str = "info") -> None:
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        # exc_info=... on a log call becomes an "exception" field holding the traceback
        structlog.processors.format_exc_info,
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.processors.KeyValueRenderer(
            key_order=["timestamp", "level", "event"], drop_missing=True
        )
    )
    number = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(number),
        # sys.stderr is looked up per logger, not bound now: a replaced stream (a test's capture, which
        # is closed afterwards) must not keep receiving log lines.
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    _route_stdlib(renderer, number)


def _route_stdlib(renderer: structlog.typing.Processor, number: int) -> None:
    handler = _StderrHandler(max(logging.WARNING, number))
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.stdlib.add_logger_name,
                structlog.processors.format_exc_info,
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    # The last-resort handler, not a root one: py-libp2p's import empties its `libp2p` logger's handlers
    # and stops it propagating, so its records reach no handler and Python gives them to this one. Its
    # level is the last-resort's (warnings and errors), or the quieter --log-level.
    logging.lastResort = handler
