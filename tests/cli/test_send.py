"""`filpy send` against a real node: amounts in every form Lotus reads, the message in the pool as the
node signed it, `--wait` until it executed on chain, `--nonce` through estimate, sign and push, and
refusals (bad address, bad amount, insufficient funds) as messages with status 1."""

from chain.types.fil import FIL_PRECISION
from tests.cli.client_kit import Filpy, error_line
from tests.cli.conftest import Node
from tests.rpc.chain_node import ALICE_ADDR, BOB_ADDR, CAROL_ADDR


async def test_amounts_in_every_form(served: Node, filpy: Filpy) -> None:
    sent = {}
    for text, atto in (
        ("1.5", 3 * FIL_PRECISION // 2),
        ("1.5 FIL", 3 * FIL_PRECISION // 2),
        ("1500 attoFIL", 1500),
    ):
        ran = await filpy("send", "--from", str(ALICE_ADDR), str(CAROL_ADDR), text)
        assert ran.code == 0, ran.err
        assert ran.lines[:3] == [
            f"Sending message from: {ALICE_ADDR}",
            f"Sending message to: {CAROL_ADDR}",
            "Using Method: 0",
        ]
        sent[ran.lines[3]] = atto
    async with served.api() as api:
        pending = {m["CID"]["/"]: int(m["Message"]["Value"]) for m in await api.call("MpoolPending", [])}
    assert pending == sent


async def test_json_is_the_signed_message_the_node_pushed(served: Node, filpy: Filpy) -> None:
    pushed = (await filpy("send", "--from", str(BOB_ADDR), str(CAROL_ADDR), "2", "--json")).json()
    async with served.api() as api:
        (pending,) = await api.call("MpoolPending", [])
    assert pushed == pending
    assert pushed["Message"]["Value"] == str(2 * FIL_PRECISION)


async def test_wait_until_it_executed(served: Node, filpy: Filpy) -> None:
    args = ("send", "--from", str(ALICE_ADDR), str(CAROL_ADDR), "0.25", "--wait", "--confidence", "1")
    ran = await filpy.mining(served.mine, *args)
    assert ran.code == 0, ran.err
    cid = ran.lines[3]
    fields = ran.fields()
    async with served.api() as api:
        lookup = await api.call("StateSearchMsg", [], {"/": cid}, None, False)
    assert fields["Exit Code"] == "0"
    assert fields["Height"] == str(lookup["Height"])
    assert fields["Gas Used"] == str(lookup["Receipt"]["GasUsed"])
    assert fields["Executed in tipset"] == lookup["TipSet"][0]["/"]  # one CID a line
    assert [c["/"] for c in lookup["TipSet"]] == [
        line.strip() for line in _after(ran.lines, "Executed in tipset")
    ]
    as_json = await filpy.mining(served.mine, *args, "--json")
    assert as_json.json()["Receipt"]["ExitCode"] == 0


async def test_with_a_nonce_of_its_own(served: Node, filpy: Filpy) -> None:
    async with served.api() as api:
        nonce = await api.call("MpoolGetNonce", str(BOB_ADDR))
    ran = await filpy("send", "--from", str(BOB_ADDR), "--nonce", str(nonce), str(CAROL_ADDR), "3", "--json")
    assert ran.code == 0, ran.err
    async with served.api() as api:
        (pending,) = await api.call("MpoolPending", [])
    assert ran.json() == pending["CID"]
    assert (pending["Message"]["Nonce"], pending["Message"]["Value"]) == (nonce, str(3 * FIL_PRECISION))


async def test_method_params_and_gas_given(served: Node, filpy: Filpy) -> None:
    ran = await filpy(
        "send",
        "--from",
        str(ALICE_ADDR),
        "--gas-premium",
        "1234",
        "--gas-feecap",
        "900000000",
        "--gas-limit",
        "2000000",
        str(CAROL_ADDR),
        "0",
        "--json",
    )
    message = ran.json()["Message"]
    assert (message["GasPremium"], message["GasFeeCap"], message["GasLimit"]) == (
        "1234",
        "900000000",
        2000000,
    )


async def test_refusals(served: Node, filpy: Filpy) -> None:
    bad_to = await filpy("send", "--from", str(ALICE_ADDR), "t1xyz", "1")
    assert error_line(bad_to, "send").startswith("failed to parse target address 't1xyz': ")
    bad_amount = await filpy("send", "--from", str(ALICE_ADDR), str(CAROL_ADDR), "1.5 GiB")
    assert error_line(bad_amount, "send").startswith(
        "failed to parse amount '1.5 GiB': unrecognized unit 'GiB'"
    )
    fractional = await filpy("send", "--from", str(ALICE_ADDR), str(CAROL_ADDR), "0.5 attoFIL")
    assert "not a whole number of attoFIL" in error_line(fractional, "send")
    negative = await filpy("send", "--from", str(ALICE_ADDR), str(CAROL_ADDR), "-1")
    assert error_line(negative, "send") == "failed to parse amount '-1': amount '-1' is negative"
    too_much = await filpy("send", "--from", str(ALICE_ADDR), str(CAROL_ADDR), "100000000")
    said = error_line(too_much, "send")
    assert said.startswith("gas estimation failed: ") and "exceeds its balance" in said
    no_default = await filpy("send", str(CAROL_ADDR), "1")
    assert (
        error_line(no_default, "send")
        == "failed to get default address: failed to get default key: no default key is set"
    )
    async with served.api() as api:
        assert await api.call("MpoolPending", []) == []


def _after(lines: list[str], key: str) -> list[str]:
    """A key-value field's value lines: the key's line, then the lines that continue it."""
    start = next(i for i, line in enumerate(lines) if line.startswith(key))
    values = [lines[start].removeprefix(key)]
    for line in lines[start + 1 :]:
        if not line.startswith(" "):
            break
        values.append(line)
    return values
