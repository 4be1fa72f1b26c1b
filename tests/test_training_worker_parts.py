"""The training process's parts that need no process (ae.training_worker): how it reads the
parent's lines, how it stops sending once the parent has gone, and the speed it leaves for the
Train page's estimate. The process itself is tested in test_training_worker.py (slow)."""
import threading
import time
from multiprocessing import Pipe
from types import SimpleNamespace

from ae.live_training import measured_speed
from ae.train import TrainSettings
from ae.training_worker import _Channel, _Control, _record_speed


def _until(condition, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.005)
    return condition()


def test_the_first_command_wins_and_the_end_of_input_means_the_parent_has_gone():
    started = time.monotonic()
    control = _Control(iter(["beat\n", "  stop \n", "shutdown\n", "nonsense\n"]))
    assert _until(lambda: control.parent_gone)
    assert control.command == "stop" and control.last_beat >= started


def test_beats_alone_neither_stop_nor_lose_the_parent():
    read, parent_leaves = [], threading.Event()

    def parent_lines():  # two beats, then a parent that is still there: its stdin has not ended
        for line in ("beat\n", "beat\n"):
            read.append(line)
            yield line
        parent_leaves.wait(5)

    control = _Control(parent_lines())
    try:
        assert _until(lambda: len(read) == 2)
        time.sleep(0.05)  # time for the thread to act on the last line
        assert control.command is None and not control.parent_gone
    finally:
        parent_leaves.set()
    assert _until(lambda: control.parent_gone)


def test_sending_stops_quietly_once_the_parent_has_gone():
    reader, writer = Pipe(duplex=False)
    channel = _Channel(writer)
    channel.send("event", None, None)
    assert reader.recv() == ("event", None, None) and not channel.broken
    reader.close()
    channel.send("event", None, None)  # no exception: the worker goes on to save its model
    channel.send("outcome", {})
    assert channel.broken


def test_the_recorded_speed_is_the_median_and_feeds_the_estimate(tmp_path):
    history = [SimpleNamespace(examples_per_s=rate) for rate in (900.0, 100.0, 500.0)]
    _record_speed(tmp_path, TrainSettings(model="cnn", batch_size=32), SimpleNamespace(history=history))
    assert measured_speed("cnn", tmp_path) == 500.0
    assert measured_speed("ff", tmp_path) is None  # each architecture has its own
    _record_speed(tmp_path, TrainSettings(model="ff"), SimpleNamespace(history=[]))  # nothing measured
    assert measured_speed("ff", tmp_path) is None and measured_speed("cnn", tmp_path) == 500.0
