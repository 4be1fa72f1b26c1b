"""The Train page's training process (ae.training_worker), its slot (ae.training_slot) and saves
(ae.weights.save_model): the slot is exclusive across objects and processes and freed when its
holder dies; budgets, a lost page and a server shutdown stop the job and leave a complete
weights+card pair or nothing; two saves under one name give two files. Bundled sample only."""
import hashlib
import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from ae.architectures import build_model
from ae.errors import AEError
from ae.live_training import LiveTraining, TrainingBudget, estimate, outcome_text
from ae.models import DEFAULT_CONFIGS
from ae.registry import list_models, user_model_path
from ae.train import TrainSettings
from ae.training_slot import SlotHolder, TrainingSlot, slot_dir
from ae.training_worker import SPEEDS_FILE
from ae.weights import card_path, load_model, save_model, user_models_dir

pytestmark = pytest.mark.slow  # starts training processes
ROOT = Path(__file__).resolve().parent.parent
LONG = TrainSettings(model="ff", epochs=50, batch_size=16, report_every=1, device="cpu")  # 2,500 steps


def _env() -> dict:
    return os.environ | {"PYTHONPATH": str(ROOT)}


def _wait(job, seconds=90):
    assert job.join(seconds), "training did not finish"
    return job.snapshot(heartbeat=False)


def _saved_pairs(folder: Path) -> list[str]:
    """Names of the models in `folder`, after checking every one is a complete, matching pair
    and that nothing half-written is left."""
    if not folder.exists():
        return []
    left = [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert not left, f"temporary files left behind: {left}"
    names = []
    for weights in sorted(folder.glob("*.safetensors")):
        card = json.loads(card_path(weights).read_text())
        assert card["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
        load_model(weights)
        names.append(weights.stem)
    cards = sorted(p.stem for p in folder.glob("*.json") if not p.name.startswith("."))
    assert cards == sorted(names), "a card without its weights"
    return sorted(names)


def _read_line(proc, seconds=90) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], seconds)
    assert ready, "the server script printed nothing"
    return proc.stdout.readline()


def _gone(pid: int, seconds=30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True  # exited; its new parent has not reaped it yet
        except (FileNotFoundError, ProcessLookupError):
            return True
        time.sleep(0.05)
    return False


HOLD_SLOT = ("import sys, time\n"
             "from ae.training_slot import SlotHolder, TrainingSlot\n"
             "slot = TrainingSlot(sys.argv[1])\n"
             "print(slot.acquire(SlotHolder(name='elsewhere', deadline=time.time() + 60)), flush=True)\n"
             "time.sleep(120)\n")


def _holder_process(folder: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", HOLD_SLOT, str(folder)], stdout=subprocess.PIPE,
                            text=True, env=_env())


def test_slot_is_exclusive_across_objects_and_processes_and_a_killed_holder_frees_it(tmp_path):
    here, there = TrainingSlot(tmp_path), TrainingSlot(tmp_path)
    assert here.holder() is None
    assert here.acquire(SlotHolder(name="mine"))
    assert not there.acquire(SlotHolder(name="other"))  # a second object in the same process
    assert there.holder().name == "mine"
    other = _holder_process(tmp_path)
    try:
        assert _read_line(other).strip() == "False"  # a second process
    finally:
        other.kill()
        other.wait()
    here.release()
    assert there.holder() is None
    holder = _holder_process(tmp_path)
    try:
        assert _read_line(holder).strip() == "True"
        seen = there.holder()
        assert seen.name == "elsewhere" and 0 < seen.seconds_left() <= 60
        assert not there.acquire(SlotHolder(name="other"))
    finally:
        holder.kill()  # SIGKILL: no clean-up, the status file stays behind
        holder.wait()
    assert there.status_path.exists()
    assert there.holder() is None  # the kernel released the lock; the stale file blocks nobody
    assert there.acquire(SlotHolder(name="after"))
    there.release()


def test_two_saves_under_one_name_give_two_files_and_overwriting_keeps_the_pair(monkeypatch):
    torch.manual_seed(0)
    first, second = build_model(DEFAULT_CONFIGS["ff"]), build_model(DEFAULT_CONFIGS["ff"])
    path = user_model_path("same")
    assert save_model(first, path, {"n": 1}, exclusive=True) == path
    other = save_model(second, path, {"n": 2}, exclusive=True)
    assert other.name == "same-2.safetensors"
    assert _saved_pairs(user_models_dir()) == ["same", "same-2"]
    for saved, model in ((path, first), (other, second)):
        loaded = load_model(saved)
        assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    assert json.loads(card_path(other).read_text())["name"] == "same-2"
    save_model(second, path, {"n": 3})  # the CLI's --out: replaces the pair, both files at once
    assert json.loads(card_path(path).read_text())["n"] == 3
    assert torch.equal(next(iter(load_model(path).state_dict().values())), next(iter(second.state_dict().values())))

    import safetensors.torch

    def broken(state, filename, metadata=None):
        Path(filename).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", broken)  # save_model imports it when it saves
    with pytest.raises(OSError):
        save_model(first, user_model_path("never"), exclusive=True)
    assert _saved_pairs(user_models_dir()) == ["same", "same-2"]  # nothing of "never" left


def test_budget_from_the_environment_and_the_estimate_shown_before_start(monkeypatch):
    assert TrainingBudget.from_env() == TrainingBudget(600.0, None, 120.0)  # the defaults
    assert TrainingBudget.from_env(heartbeat_s=45).heartbeat_s == 45  # the app: Streamlit's session TTL
    monkeypatch.setenv("AE_TRAIN_BUDGET_S", "90")
    monkeypatch.setenv("AE_TRAIN_MAX_STEPS", "500")
    monkeypatch.setenv("AE_TRAIN_HEARTBEAT_S", "0")
    budget = TrainingBudget.from_env()
    assert budget == TrainingBudget(90.0, 500, None) and budget.describe() == "1 min 30 s or 500 steps"
    for bad in ("ten", "-5", "nan"):
        monkeypatch.setenv("AE_TRAIN_BUDGET_S", bad)
        with pytest.raises(AEError, match="AE_TRAIN_BUDGET_S"):
            TrainingBudget.from_env()
    settings = TrainSettings(model="cnn", epochs=3, batch_size=100, train_size=1000)
    est = estimate(settings, 800, budget)  # only 800 digits here: 8 steps an epoch
    assert est.steps == 24 and est.planned_steps == 24 and est.seconds is None  # no speed measured yet
    slot_dir().mkdir(parents=True, exist_ok=True)
    (slot_dir() / SPEEDS_FILE).write_text(json.dumps({"cnn": {"digits_per_s": 400.0, "batch_size": 100}}))
    assert estimate(settings, 800, budget).seconds == pytest.approx(24 * 100 / 400)
    assert estimate(settings, 800, TrainingBudget(max_steps=10)).planned_steps == 10


def test_an_unusable_slot_folder_is_a_message(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(AEError, match="can't be used"):
        LiveTraining(LONG, "nowhere", slot_folder=blocker / "slot").start()


def test_step_budget_stops_the_job_and_saves_what_it_has():
    job = LiveTraining(LONG, "step-budget", TrainingBudget(seconds=None, max_steps=3, heartbeat_s=None)).start()
    snap = _wait(job)
    assert snap.status == "stopped" and snap.reason == "budget" and snap.error is None
    assert snap.steps[-1] == 3 and snap.total_steps == 3
    assert "budget" in outcome_text(snap) and "saved" in outcome_text(snap)
    card = json.loads(card_path(snap.saved_path).read_text())
    assert card["stop_reason"] == "budget" and card["training"]["steps"] == 3 and card["budget_steps"] == 3
    assert _saved_pairs(user_models_dir()) == ["step-budget"]


def test_time_budget_stops_the_job_at_low_priority_and_saves():
    job = LiveTraining(LONG, "time-budget", TrainingBudget(seconds=2, heartbeat_s=None)).start()
    holder = TrainingSlot().holder()
    assert holder.name == "time-budget" and holder.job_id == job.job_id  # the page shows "you"
    assert os.getpriority(os.PRIO_PROCESS, job.pid) >= min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)
    snap = _wait(job)
    assert snap.status == "stopped" and snap.reason == "budget"
    assert 0 < snap.steps[-1] < 2500
    assert json.loads(card_path(snap.saved_path).read_text())["training"]["threads"] == 1
    assert _saved_pairs(user_models_dir()) == ["time-budget"]
    assert TrainingSlot().holder() is None


def test_a_job_whose_page_has_gone_stops_and_saves():
    job = LiveTraining(LONG, "orphan", TrainingBudget(seconds=None, heartbeat_s=2)).start()
    deadline = time.monotonic() + 90
    while not job.snapshot().steps and time.monotonic() < deadline:  # the page polls: it trains
        time.sleep(0.05)
    snap = _wait(job)  # nobody polls any more
    assert snap.status == "stopped" and snap.reason == "heartbeat" and 0 < snap.steps[-1] < 2500
    assert _saved_pairs(user_models_dir()) == ["orphan"]
    assert [e.name for e in list_models(("ff",)) if not e.shipped] == ["orphan"]


SERVER = textwrap.dedent("""
    import signal, sys, time
    from ae.live_training import LiveTraining, TrainingBudget
    from ae.train import TrainSettings

    def main():
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))  # like Streamlit: stop, then exit normally
        job = LiveTraining(TrainSettings(model="ff", epochs=50, batch_size=16, report_every=1, device="cpu"),
                           "shutdown", TrainingBudget(heartbeat_s=None)).start()
        while not job.snapshot().steps:
            time.sleep(0.05)
        print("training", job.pid, flush=True)
        while True:
            time.sleep(0.1)

    if __name__ == "__main__":
        main()
""")


@pytest.mark.parametrize("how", ["sigterm-server", "sigterm-group", "sigkill-server"])
def test_server_shutdown_stops_training_cleanly(tmp_path, how):
    """SIGTERM to the server (its exit stops the job), to the whole process group (Ctrl-C,
    container stop), or SIGKILL to the server (the job notices its parent has gone)."""
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    server = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=_env(), start_new_session=True)
    try:
        line = _read_line(server)
        assert line.startswith("training"), line + server.stderr.read()
        child = int(line.split()[1])
        {"sigterm-server": lambda: server.send_signal(signal.SIGTERM),
         "sigterm-group": lambda: os.killpg(server.pid, signal.SIGTERM),
         "sigkill-server": lambda: server.kill()}[how]()
        _, err = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    assert _gone(child, 60), "the training process outlived its server"
    assert "terminate called" not in err and "Traceback" not in err, err
    if how != "sigkill-server":
        assert server.returncode == 0, err
    assert _saved_pairs(user_models_dir()) == ["shutdown"]  # it had trained: it saved, completely
    card = json.loads(card_path(user_models_dir() / "shutdown.safetensors").read_text())
    expected = {"sigterm-server": {"shutdown"}, "sigterm-group": {"shutdown", "signal"}, "sigkill-server": {"parent"}}
    assert card["stop_reason"] in expected[how] and card["training"]["stopped_early"]
    assert TrainingSlot().holder() is None


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is absent (apt-get install chromium)")
def test_real_server_stopped_mid_training_saves_and_exits_cleanly(tmp_path):
    """`streamlit run app.py`, Start on the Train page in Chromium, then SIGTERM to the server."""
    sync_api = pytest.importorskip("playwright.sync_api")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.address",
         "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
            try:
                page = browser.new_page()
                deadline = time.monotonic() + 90
                while True:
                    try:
                        page.goto(f"http://127.0.0.1:{port}/train")
                        break
                    except sync_api.Error:
                        assert time.monotonic() < deadline, "the server did not come up"
                        time.sleep(0.5)
                start = page.get_by_role("button", name="Start training")
                start.wait_for(timeout=90_000)
                start.click()
                page.get_by_text("(you): epoch").wait_for(timeout=120_000)  # training, and it is ours
                holder = TrainingSlot().holder()
                assert holder is not None and holder.pid
            finally:
                browser.close()
        server.send_signal(signal.SIGTERM)
        out, _ = server.communicate(timeout=90)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    assert server.returncode == 0, out
    assert "terminate called" not in out and "Traceback" not in out, out
    assert _gone(holder.pid), "the training process outlived the server"
    assert _saved_pairs(user_models_dir()) == [holder.name]
    assert json.loads(card_path(user_models_dir() / f"{holder.name}.safetensors").read_text())["stop_reason"] == "shutdown"
    assert TrainingSlot().holder() is None
