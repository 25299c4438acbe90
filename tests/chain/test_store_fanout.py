"""The fan-out of values to trio subscribers: order, threads, finished runs, bad buffers."""

import threading

import pytest
import trio

from chain.chainstore.fanout import Fanout


async def test_values_from_many_threads_all_arrive_each_thread_in_order() -> None:
    feed: Fanout[tuple[int, int]] = Fanout("test")
    receive = feed.subscribe(buffer=1000, first=(-1, -1))

    def publish_some(worker: int) -> None:
        for n in range(100):
            feed.publish((worker, n))

    workers = [threading.Thread(target=publish_some, args=(i,)) for i in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        await trio.to_thread.run_sync(worker.join, 30)
    with trio.fail_after(5):
        got = [await receive.receive() for _ in range(401)]
    assert got[0] == (-1, -1)
    for i in range(4):
        assert [n for w, n in got[1:] if w == i] == list(range(100))


def test_subscribers_of_a_finished_run_are_dropped() -> None:
    feed: Fanout[str] = Fanout("test")

    async def subscribe_and_leave() -> None:
        feed.subscribe(buffer=4)

    trio.run(subscribe_and_leave)
    assert feed.subscribers == 1
    feed.publish("nobody is listening")  # must not raise
    assert feed.subscribers == 0


async def test_a_buffer_must_hold_something() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Fanout[int]("test").subscribe(buffer=0)
