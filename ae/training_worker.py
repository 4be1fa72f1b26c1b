"""The training process behind the Train page (started by `ae.live_training.LiveTraining` as
`python -m ae.training_worker FD`).

A fresh interpreter (the web server, which has torch threads, is never forked; and not
multiprocessing's "spawn", which would re-run the page script Streamlit installs as `__main__`),
so training can't take the pages' CPU: the parent starts it with OMP_NUM_THREADS=1 and
OMP_WAIT_POLICY=PASSIVE, it lowers its own priority (nice 10) and limits torch to one thread.
It takes the deployment's training slot (`ae.training_slot`) before loading torch and holds it
for its whole life, loads its own data and model, and talks to the parent over two pipes:

    stdin, from the parent: the job as one JSON line, then "beat" (the page polled), "stop"
    (the user asked) or "shutdown" (the server is exiting) lines; end of file: the parent is gone.
    FD, to the parent (multiprocessing.connection messages):
        ("started", SlotHolder)                  the slot is ours (sent again with the deadline)
        ("busy", SlotHolder | None)              someone else holds the slot; nothing was done
        ("event", TrainEvent | None, preview | None)   progress; preview: (2, 8, 28, 28) float32
        ("outcome", dict)                        status, reason, saved_path, error, steps, seconds

It stops between two steps, saves what it has (atomically, under a free name) and exits 0 when
the parent asks ("asked"), the server is shutting down ("shutdown"), it gets SIGTERM or SIGINT
("signal"), the parent process is gone ("parent"), no heartbeat came for the budget's heartbeat
timeout ("heartbeat": the session has gone), or the budget's time or steps ran out ("budget").
This module imports neither torch nor numpy at the top, so the slot is taken first; the data is
read (in a child, `ae.split_reader.read_ahead`) before torch is imported.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from multiprocessing.connection import Connection

from ae.training_slot import SlotHolder, TrainingSlot

NICE = 10
PREVIEW_DIGITS = 8
SPEEDS_FILE = ".training-speeds.json"  # digits/s of the last training per architecture, for estimates


class _Channel:
    """Sends to the parent; once the parent has gone, sending quietly stops (and says so)."""

    def __init__(self, conn: Connection):
        self.conn, self.broken = conn, False

    def send(self, *message) -> None:
        if self.broken:
            return
        try:
            self.conn.send(message)
        except (OSError, EOFError, ValueError):
            self.broken = True


class _Control:
    """What the parent said on stdin, kept up to date by a thread (plain Python, no torch)."""

    def __init__(self, lines):
        self.command: str | None = None  # "stop" or "shutdown"
        self.last_beat = time.monotonic()
        self.parent_gone = False
        self._lines = lines
        threading.Thread(target=self._listen, name="control", daemon=True).start()

    def _listen(self) -> None:
        for line in self._lines:
            word = line.strip()
            if word == "beat":
                self.last_beat = time.monotonic()
            elif word in ("stop", "shutdown"):
                self.command = self.command or word
        self.parent_gone = True


def main(argv: list[str]) -> int:
    try:
        os.nice(NICE)
    except OSError:
        pass  # not allowed here: still one thread
    signals: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: signals.append(signum))
    channel = _Channel(Connection(int(argv[0]), readable=False))
    spec = json.loads(sys.stdin.readline() or "null")
    if not isinstance(spec, dict):
        return 2  # the parent went away before sending the job
    control = _Control(sys.stdin)
    if spec.get("stop"):
        control.command = "stop"  # stopped before it started
    slot = TrainingSlot(spec["slot_dir"])
    me = SlotHolder(job_id=spec["job_id"], name=spec["name"], arch=spec["settings"]["model"], started=time.time(),
                    host=socket.gethostname(), pid=os.getpid())
    try:
        acquired = slot.acquire(me)
    except OSError as exc:
        channel.send("outcome", {"status": "failed", "error": f"The training slot's folder {slot.folder} "
                                                              f"can't be used ({exc.strerror or exc})."})
        return 0
    if not acquired:
        channel.send("busy", slot.holder())
        return 0
    try:
        channel.send("started", me)
        _train(spec, channel, control, signals, slot, me)
    finally:
        slot.release()
        channel.conn.close()
    return 0


def _train(spec, channel, control, signals, slot, me) -> None:
    clock_start = time.monotonic()  # until the model and data are ready; then the budget's clock
    outcome = {"status": "failed", "reason": None, "saved_path": None, "error": None, "steps": 0,
               "total_steps": None, "seconds": 0.0}
    parent_pid = spec["parent_pid"]
    budget_s, heartbeat_s = spec["budget_s"], spec["heartbeat_s"]
    reason: list[str] = []

    def should_stop() -> bool:
        if reason:
            return True
        now = time.monotonic()
        if control.command == "stop":
            reason.append("asked")
        elif control.command == "shutdown":
            reason.append("shutdown")
        elif signals:
            reason.append("signal")
        elif control.parent_gone or channel.broken or os.getppid() != parent_pid:
            reason.append("parent")
        elif heartbeat_s and now - control.last_beat > heartbeat_s:
            reason.append("heartbeat")
        elif budget_s and now - clock_start >= budget_s:
            reason.append("budget")
        return bool(reason)

    if should_stop():  # stopped while starting: don't even load torch
        outcome.update(status="stopped", reason=reason[0])
        channel.send("outcome", outcome)
        return

    _read_training_splits_ahead(spec.get("data_dir"), should_stop)
    if should_stop():  # stopped while the data was read: still no torch to load
        outcome.update(status="stopped", reason=reason[0])
        channel.send("outcome", outcome)
        return
    try:
        import torch

        torch.set_num_threads(1)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass  # already set in this process
        from ae.errors import AEError
        from ae.live_training import training_data
        from ae.train import Trainer, TrainSettings
        from ae.weights import save_model
    except BaseException as exc:  # a broken installation: say so rather than die silently
        outcome["error"] = f"The training process could not load torch: {type(exc).__name__}: {exc}"
        channel.send("outcome", outcome)
        return

    try:
        settings = TrainSettings.from_dict(spec["settings"])
        if spec["max_steps"] is not None:  # a step budget: planned for, so the schedule still ends
            settings.max_steps = min(settings.max_steps or spec["max_steps"], spec["max_steps"])
        data = training_data(spec.get("data_dir"))
        trainer = Trainer(settings, data.train, data.val)
        # Keep only the digits this job trains on: all of MNIST as floats is 188 MB of the
        # server's memory, and the default job uses 8,000 of its 60,000 digits.
        trainer.train_data = data.train = trainer.data
        outcome["total_steps"] = trainer.total_steps
        full_steps = trainer.steps_per_epoch * settings.epochs
        preview_images = data.val.images[:PREVIEW_DIGITS]
        last_preview = 0.0
        # The time budget counts training, not loading torch and the data; everyone sees the deadline.
        clock_start = time.monotonic()
        if budget_s:
            me.deadline = time.time() + budget_s
            slot.update(me)
            channel.send("started", me)
        for event in trainer.run(should_stop=should_stop):
            preview, now = None, time.monotonic()
            if event.kind == "epoch" or now - last_preview >= spec["preview_every"]:
                preview, last_preview = _preview(trainer, preview_images), now
            channel.send("event", event, preview)
        steps = trainer.history[-1].step if trainer.history else 0
        if not reason and spec["max_steps"] is not None and steps == spec["max_steps"] < full_steps:
            reason.append("budget")  # the server's step budget capped it (not the caller's max_steps)
        outcome.update(steps=steps, status="stopped" if reason else "done", reason=reason[0] if reason else None)
        if trainer.history:  # nothing to save if it was stopped before the first step
            card = trainer.card() | {"validation": data.val.source, "trained_in": "app",
                                     "stop_reason": outcome["reason"], "budget_s": budget_s,
                                     "budget_steps": spec["max_steps"]}
            path = save_model(trainer.model, spec["path"], card, exclusive=True)
            outcome["saved_path"] = str(path)
            _record_speed(spec["slot_dir"], settings, trainer)
        channel.send("event", None, _preview(trainer, preview_images))
    except AEError as exc:
        outcome.update(status="failed", error=str(exc))
    except Exception as exc:  # shown on the page as a message, never as a traceback
        outcome.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    outcome["seconds"] = time.monotonic() - clock_start
    channel.send("outcome", outcome)


def _read_training_splits_ahead(data_dir, should_stop=lambda: False) -> None:
    """MNIST's training and test splits read by torchvision in a child, before this process
    imports torch: the worker then never holds torchvision (~160 MB), and the child's torch is
    gone before ours loads. A stop (`should_stop`) kills the child. If reading fails, loading
    in-process later says why."""
    from ae.dataset_files import dataset_available, resolve_data_dir
    from ae.errors import AEError
    from ae.split_reader import read_ahead

    if dataset_available(data_dir):
        try:
            read_ahead("mnist", ("train", "test"), resolve_data_dir(data_dir), should_stop)
        except AEError:
            pass


def _preview(trainer, images):
    import numpy as np

    from ae.inference import reconstruct

    x_hat = reconstruct(trainer.model, images)
    return np.stack([images[:, 0].numpy(), x_hat[:, 0].numpy()])


def _record_speed(folder, settings, trainer) -> None:
    """Remember this run's training speed so the page can estimate the next run's time. Only
    the slot's holder writes the file, so a read-modify-write is safe."""
    import json
    from pathlib import Path

    from ae.files import atomic_write

    rates = sorted(e.examples_per_s for e in trainer.history)
    if not rates:
        return
    path = Path(folder) / SPEEDS_FILE
    try:
        speeds = json.loads(path.read_text())
        speeds = speeds if isinstance(speeds, dict) else {}
    except (OSError, ValueError):
        speeds = {}
    speeds[settings.model] = {"digits_per_s": rates[len(rates) // 2], "batch_size": settings.batch_size,
                              "when": time.time()}
    try:
        atomic_write(path, lambda p: p.write_text(json.dumps(speeds, indent=1) + "\n"))
    except OSError:
        pass  # only an estimate


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # no C++ static destructors or leftover torch threads at exit: nothing to abort
