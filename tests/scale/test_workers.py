"""The workers pixel work is handed to: local threads keep a bounded window and stop what is
queued when their consumer stops; results come back in order; a Ray address is checked before
Ray is asked to connect (Ray keeps retrying a dead one)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from faceledger.errors import ConfigurationError
from faceledger.service.video_analysis import _in_order
from faceledger.service.workers import LocalWorkers, _check_reachable


def test_local_workers_keep_a_window_and_stop_with_their_consumer() -> None:
    workers = LocalWorkers(2)
    started: list[int] = []
    lock = threading.Lock()

    def work(number: int) -> int:
        with lock:
            started.append(number)
        time.sleep(0.05)
        return number * number

    try:
        done = dict(workers.run(work, ((n, (n,)) for n in range(10))))
        assert done == {n: n * n for n in range(10)}
        started.clear()
        outcomes = workers.run(work, ((n, (n,)) for n in range(1000)))
        first = next(outcomes)
        outcomes.close()  # the consumer stops: queued tasks are cancelled, not run
        time.sleep(0.3)
        assert first[1] == first[0] ** 2
        assert len(started) <= workers.window + 1
    finally:
        workers.close()


def test_outcomes_finishing_out_of_order_come_back_in_order() -> None:
    finished = iter([(2, "c"), (0, "a"), (3, "d"), (1, "b")])
    assert list(_in_order(finished)) == ["a", "b", "c", "d"]
    assert list(_in_order(iter([]))) == []


def test_a_ray_address_where_nothing_listens_is_refused_at_once() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
            started = time.monotonic()
            with pytest.raises(ConfigurationError, match=f"cannot reach Ray at {address}"):
                _check_reachable(address)
            assert time.monotonic() - started < 5
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        _check_reachable(f"127.0.0.1:{listening.getsockname()[1]}")  # no error
    _check_reachable("auto")  # Ray resolves it itself
