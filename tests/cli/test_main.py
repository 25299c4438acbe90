"""The `filpy` entry point itself: lazy subcommands, logging formats, and a closed stdout ends a command
quietly."""

import importlib
import json
import logging
import os
import subprocess
import sys

import pytest
import structlog

from cli import main as cli
from node import logs
from tests.processes import run_python


def test_closed_stdout_pipe_is_not_a_crash() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before filpy writes a byte
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "cli", "genesis", "example"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 0
    assert b"Traceback" not in proc.stderr


def test_log_lines_are_key_value_or_json(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure(json=True, level="info")
    structlog.get_logger("t").info("sealed", sector=7)
    structlog.get_logger("t").debug("hidden")
    line = capsys.readouterr().err.strip()
    record = json.loads(line)
    assert (record["event"], record["sector"], record["level"]) == ("sealed", 7, "info")
    logs.configure(json=False, level="debug")
    structlog.get_logger("t").debug("shown", piece="baga")
    text = capsys.readouterr().err
    assert "event='shown'" in text and "level='debug'" in text and "piece='baga'" in text


def test_library_log_records_are_rendered_as_the_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    # py-libp2p logs through the standard library, e.g. a multi-line error when a peer does not speak
    # gossipsub: it must come out as one of the node's lines, not as bare text between them. Its import
    # leaves its `libp2p` logger without handlers and not propagating, so Python hands the records to
    # the last-resort handler; a logger of the test's own, set up the same way, stands for it.
    parent = logging.getLogger("filpy-test-libp2p")
    parent.handlers.clear()
    parent.propagate = False
    library = logging.getLogger("filpy-test-libp2p.host.basic_host")
    logs.configure(json=True, level="info")
    library.error("Failed to open stream to peer X:\n  Error: stream reset")
    library.info("below the libraries' default level: dropped")
    # a peer's answer that it does not speak a protocol is no error of this node (its caller handles it)
    library.error("Failed to open stream to peer Y:\n  Error: protocols not supported: ['/meshsub/1.1.0']")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["level"] == "error" and record["logger"] == "filpy-test-libp2p.host.basic_host"
    assert record["event"] == "Failed to open stream to peer X:\n  Error: stream reset"
    assert "timestamp" in record
    logs.configure(json=False, level="info")  # configuring again replaces the handler: one line each
    library.warning("twice?")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "level='warning'" in lines[0] and "event='twice?'" in lines[0]
    logs.configure(json=False, level="error")
    library.warning("quieter --log-level")
    assert capsys.readouterr().err == ""


# Packages a bare `import cli.main` (and so `filpy --help`) must not pull in: filpy's own layers
# below the CLI and the heavy third-party libraries they bring.
HEAVY = (
    "chain",
    "actors",
    "proofs",
    "node",
    "rpc",
    "structlog",
    "rich",
    "cbor2",
    "blspy",
    "coincurve",
    "trio",
)


def modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running code."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = run_python("-c", probe, timeout=60, check=True)
    return set(json.loads(done.stdout.splitlines()[-1]))


def modules_after_help(*args: str) -> set[str]:
    """The modules a fresh interpreter has loaded after `filpy <args> --help`."""
    return modules_after(
        "import contextlib, io, cli.main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        f"    cli.main.main({[*args, '--help']!r})"
    )


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def test_importing_the_cli_imports_nothing_heavy() -> None:
    assert heavy(modules_after("import cli.main")) == []


def test_help_imports_no_command_module() -> None:
    loaded = modules_after_help()
    assert heavy(loaded) == []
    assert not {command.module for command in cli.COMMANDS} & loaded


def test_a_command_imports_its_own_module_only() -> None:
    loaded = modules_after("import cli.main\ncli.main.build_parser(['--log-level', 'debug', 'commp', 'x'])")
    assert "cli.commp" in loaded and "proofs.commp" in loaded
    assert "cli.genesis" not in loaded and "node.genesis" not in loaded


def test_every_command_is_listed_and_has_its_module() -> None:
    parser = cli.build_parser()
    help_text = parser.format_help()
    for command in cli.COMMANDS:
        assert command.name in help_text
        module = importlib.import_module(command.module)
        assert callable(module.add_arguments)
        parsed = cli.build_parser([command.name])
        assert command.name in parsed.format_help()


def test_devnet_block_delay_is_checked_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    for bad, why in (("31", "expected 1..30 seconds, or 0 to mine only on demand, got 31"), ("1.5", "whole")):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["devnet", "--block-delay", bad])
        assert exit_info.value.code == 2
        assert why in capsys.readouterr().err


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["lotus"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'lotus'" in capsys.readouterr().err


def test_a_group_without_its_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["wallet"])
    assert exit_info.value.code == 2
    assert "the following arguments are required: SUBCOMMAND" in capsys.readouterr().err


def test_devnet_and_daemon_help_import_nothing_heavy() -> None:
    for command in ("devnet", "daemon"):
        loaded = modules_after_help(command)
        assert f"cli.{command}" in loaded and heavy(loaded) == []


CLIENT_COMMANDS = ("wallet", "send", "chain", "mpool", "state", "miner", "paych", "auth", "sync", "net")


@pytest.mark.parametrize("command", CLIENT_COMMANDS)
def test_client_command_help_imports_nothing_heavy(command: str) -> None:
    # Each group's subcommands are declared with their help; the connection, the chain's types and rich
    # are imported when a subcommand runs (cli/subcommands.py).
    loaded = modules_after_help(command)
    assert f"cli.{command}" in loaded and heavy(loaded) == []
    assert "cli.client" not in loaded


def test_every_client_subcommand_has_the_client_options() -> None:
    import argparse

    def leaves(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            return [parser]
        return [leaf for sub in subs for child in set(sub.choices.values()) for leaf in leaves(child)]

    for command in CLIENT_COMMANDS:
        top = cli.build_parser([command])
        (group,) = (a for a in top._actions if isinstance(a, argparse._SubParsersAction))
        for leaf in leaves(group.choices[command]):
            options = {o for a in leaf._actions for o in a.option_strings}
            assert {"--repo", "--json"} <= options, leaf.prog
            assert leaf.get_default("handler").command == leaf.prog


@pytest.mark.parametrize("command", ["devnet", "daemon"])
def test_a_node_command_exits_without_the_interpreter_teardown(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stopped node's process ends at once with the command's status (its stores are closed by
    # then); the interpreter's last collection over the node's caches would take seconds.
    module = importlib.import_module(f"cli.{command}")
    monkeypatch.setattr(module, "run", lambda args: 3)
    exits: list[int] = []
    monkeypatch.setattr(os, "_exit", exits.append)
    cli.main([command])
    assert exits == [3]


@pytest.mark.parametrize(
    ("argv", "prog"),
    [
        (["wallet", "balance", "t01000", "extra"], "filpy wallet balance"),
        (["chain", "head", "--bogus"], "filpy chain head"),
        (["miner", "sectors", "list", "--bogus"], "filpy miner sectors list"),
        (["commp", "a", "extra"], "filpy commp"),
    ],
)
def test_an_unknown_argument_gets_its_commands_usage(
    argv: list[str], prog: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # argparse reports arguments no parser took from the top parser, with `filpy`'s usage: a user who
    # mistyped a flag of `filpy chain head` was shown the list of commands instead of that command's flags.
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: {prog} [-h]")
    assert f"{prog}: error: unrecognized arguments: {argv[-1]}\n" in err
