"""node/drain.py: items applied in a worker thread in submission order, all waiting items a pass;
each item's exception its own; a cancelled submitter strands nobody; a pass's size is bounded; an error
that stops the thread wakes every submitter; the thread stops when its trio run is gone."""

import threading
import time

import pytest
import trio
import trio.testing

from node.drain import DrainStopped, ThreadDrain

WAIT_S = 5.0


class Gated:
    """A function whose first call waits (in the worker thread) until `release()`; records its items."""

    def __init__(self) -> None:
        self.applied: list[int] = []
        self.entered = threading.Event()
        self._gate = threading.Event()

    def __call__(self, item: int) -> int:
        if not self.entered.is_set():
            self.entered.set()
            assert self._gate.wait(WAIT_S)
        self.applied.append(item)
        if item < 0:
            raise ValueError(f"negative {item}")
        return item * 10

    def release(self) -> None:
        self._gate.set()


async def wait_entered(fn: Gated) -> None:
    with trio.fail_after(WAIT_S):
        while not fn.entered.is_set():
            await trio.sleep(0.001)


def wait_idle(drain: ThreadDrain[int, int]) -> None:
    deadline = time.monotonic() + WAIT_S
    while drain.busy:
        assert time.monotonic() < deadline, "the drain's worker thread did not stop"
        time.sleep(0.001)


async def test_items_run_in_submission_order_all_waiting_in_one_pass() -> None:
    fn = Gated()
    drain = ThreadDrain(fn, name="test")
    results: dict[int, list[int | Exception]] = {}

    async def submit(job: int, items: list[int]) -> None:
        results[job] = await drain.run(items)

    with trio.fail_after(WAIT_S):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(submit, 0, [1])
            await wait_entered(fn)  # the first pass holds item 1
            for job in range(1, 6):  # each submitted once the one before waits
                nursery.start_soon(submit, job, [job * 10 + 1, job * 10 + 2])
                await trio.testing.wait_all_tasks_blocked()
            fn.release()
    assert fn.applied == [1, 11, 12, 21, 22, 31, 32, 41, 42, 51, 52]
    assert drain.passes == 2  # the first item's pass, then one for all that arrived meanwhile
    assert results == {job: ([10] if job == 0 else [job * 100 + 10, job * 100 + 20]) for job in range(6)}
    wait_idle(drain)
    assert await drain.run([]) == []
    assert drain.passes == 2


async def test_an_item_that_raises_fails_alone() -> None:
    fn = Gated()
    fn.release()
    drain = ThreadDrain(fn, name="test")
    with trio.fail_after(WAIT_S):
        outcomes = await drain.run([1, -2, 3])
    assert outcomes[0] == 10 and outcomes[2] == 30
    assert isinstance(outcomes[1], ValueError) and str(outcomes[1]) == "negative -2"


async def test_a_pass_is_bounded_by_whole_submissions() -> None:
    fn = Gated()
    drain = ThreadDrain(fn, name="test", max_pass=3)
    with trio.fail_after(WAIT_S):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain.run, [0])
            await wait_entered(fn)
            for items in ([1, 2], [3], [4, 5, 6, 7], [8]):
                nursery.start_soon(drain.run, items)
                await trio.testing.wait_all_tasks_blocked()
            fn.release()
    # [0]; [1, 2] + [3]; [4, 5, 6, 7] alone (larger than a pass); [8]
    assert drain.passes == 4
    assert fn.applied == list(range(9))


async def test_a_cancelled_submitter_strands_nobody() -> None:
    fn = Gated()
    drain = ThreadDrain(fn, name="test")
    answers: list[list[int | Exception]] = []

    async def follower(items: list[int]) -> None:
        answers.append(await drain.run(items))

    with trio.fail_after(WAIT_S):
        async with trio.open_nursery() as nursery:
            with trio.CancelScope() as leader:
                nursery.start_soon(follower, [2, 3])
                leader.cancel()  # cancelled before its item's pass even starts: the item still runs
                await drain.run([1])
            await wait_entered(fn)
            fn.release()
    assert leader.cancelled_caught  # the leader's wait was cancelled, not its item
    assert answers == [[20, 30]]
    assert sorted(fn.applied) == [1, 2, 3]


async def test_an_error_that_stops_the_thread_wakes_every_submitter() -> None:
    calls = []

    def fn(item: int) -> int:
        calls.append(item)
        if item == 2:
            raise KeyboardInterrupt  # not an item's own failure: it ends the worker thread
        return item

    drain = ThreadDrain(fn, name="test")
    with trio.fail_after(WAIT_S):
        outcomes = await drain.run([1, 2, 3])
    assert outcomes[0] == 1
    assert all(isinstance(o, DrainStopped) for o in outcomes[1:])
    wait_idle(drain)
    with trio.fail_after(WAIT_S):
        assert await drain.run([4]) == [4]  # a new submission starts a new thread
    assert calls == [1, 2, 4]


def test_the_thread_stops_when_its_run_is_gone() -> None:
    fn = Gated()
    drain = ThreadDrain(fn, name="test")

    async def leave_while_busy() -> None:
        with trio.move_on_after(0.05):
            await drain.run([1])  # the run ends while the thread still holds the item

    trio.run(leave_while_busy)
    assert drain.busy
    fn.release()
    wait_idle(drain)  # it could not hand the outcome back: it stopped and dropped nothing else

    async def again() -> list[int | Exception]:
        with trio.fail_after(WAIT_S):
            return await drain.run([2])

    assert trio.run(again) == [20]
    assert fn.applied == [1, 2]


def test_max_pass_is_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ThreadDrain(Gated(), name="test", max_pass=0)
