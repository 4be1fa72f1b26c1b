"""Retrain an autoencoder live. The training runs in its own low-priority process holding this
deployment's one training slot (ae.live_training); this page only starts it, stops it, shows who
holds the slot and redraws the progress every half second (which also tells the training that
the page is still open). Presets fill the settings; the trained model can be downloaded as one
.zip, and such a .zip (or its two files) uploaded again for this session only (ae.model_transfer)."""
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from ae.data import dataset_available
from ae.display import digit_image, strip
from ae.errors import AEError
from ae.live_training import (LiveTraining, TrainingBudget, busy_message, estimate, outcome_text, report_every,
                              training_data_info)
from ae.model_transfer import MAX_UPLOAD_BYTES, UPLOAD_TYPES, load_upload, pack_model
from ae.models import DEFAULT_CONFIGS
from ae.registry import is_valid_name, list_models, suggest_name, user_model_path
from ae.train import TrainSettings, default_settings, presets
from ae.training_slot import TrainingSlot, format_seconds
from ae.weights import user_models_dir
from app_pages.common import SHORT_TITLES, UPLOADED_MODELS

JOB = "training_job"
MAX_EPOCHS = 50  # the shipped FF took 40
MAX_SESSION_UPLOADS = 4  # models kept in one session's memory; the oldest goes first


@st.cache_data(ttl=60, show_spinner=False)
def data_info(full: bool):
    return training_data_info()  # counts only: the training process loads the digits itself


def start(settings: TrainSettings, name: str, budget: TrainingBudget) -> None:
    st.session_state.pop("train_error", None)
    try:
        st.session_state[JOB] = LiveTraining(settings, name, budget).start()
    except (AEError, ValueError) as exc:
        st.session_state["train_error"] = str(exc)


def apply_preset(arch: str, preset: TrainSettings, n_train: int) -> None:
    """Fill the settings widgets (a callback: it runs before they are created on the rerun)."""
    st.session_state[f"train_latent_{arch}"] = preset.latent_dim or DEFAULT_CONFIGS[arch].latent_dim
    st.session_state["train_epochs"] = min(preset.epochs, MAX_EPOCHS)
    st.session_state[f"train_lr_{arch}"] = preset.lr
    st.session_state["train_batch"] = preset.batch_size
    st.session_state["train_size"] = min(preset.train_size or n_train, n_train)


@st.cache_data(show_spinner=False, max_entries=4)
def model_zip(path: str, mtime: float) -> bytes:
    return pack_model(Path(path))


def upload_model(key: str) -> None:
    """Check the uploaded files and keep the model in this session (never on disk)."""
    files = st.session_state.get(key) or []
    st.session_state.pop("upload_message", None)
    if not files:
        return
    st.session_state["upload_generation"] = st.session_state.get("upload_generation", 0) + 1  # empties the uploader
    try:
        if any(f.size > MAX_UPLOAD_BYTES for f in files):  # before reading them into memory
            raise AEError(f"A file is larger than {MAX_UPLOAD_BYTES // 2**20} MB: no model's file is that large.")
        entry = load_upload([(f.name, f.getvalue()) for f in files])
    except AEError as exc:
        st.session_state["upload_message"] = ("error", str(exc))
        return
    kept = [e for e in st.session_state.get(UPLOADED_MODELS, []) if e.digest != entry.digest and e.label != entry.label]
    st.session_state[UPLOADED_MODELS] = (kept + [entry])[-MAX_SESSION_UPLOADS:]
    st.session_state[f"model_{entry.arch}"] = entry.label
    st.session_state["upload_message"] = ("success", entry.label)


def stop() -> None:
    if JOB in st.session_state:
        st.session_state[JOB].stop()


def loss_chart(snap) -> go.Figure:
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=snap.steps, y=snap.train_loss, mode="lines", name="training"))
    fig.add_trace(go.Scatter(x=snap.val_steps, y=snap.val_loss, mode="lines+markers", name="validation"))
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=10, b=10), xaxis_title="step",
                      yaxis_title="loss (pixel MSE)", yaxis_type="log", legend=dict(orientation="h", y=1.1))
    return fig


st.title("Train")
st.caption("Retrain either autoencoder with your own settings and watch it learn. The result is saved "
           "as a new model in your models folder (the shipped weights are never touched) and can then "
           "be picked in the sidebar of the other pages.",
           help=f"For whoever runs this server: the models folder is `{user_models_dir()}` (AE_USER_MODELS_DIR).")
try:
    data = data_info(dataset_available())
except (AEError, OSError) as exc:
    st.error(str(exc))
    st.stop()
(st.caption if data.full_dataset else st.info)(data.note)
try:
    budget = TrainingBudget.from_env(heartbeat_s=st.get_option("server.disconnectedSessionTTL"))
except AEError as exc:
    st.error(str(exc))
    st.stop()

job: LiveTraining | None = st.session_state.get(JOB)
running = job is not None and not job.snapshot().finished
holder = TrainingSlot().holder()
busy = holder is not None and not running  # someone else's training holds the slot

with st.container(border=True):
    c1, c2, c3 = st.columns(3, gap="medium")
    arch = c1.segmented_control("Architecture", ["ff", "cnn"], format_func=SHORT_TITLES.get, default="cnn",
                                key="train_arch", required=True, disabled=running)
    latent = c1.number_input("Latent neurons", 2, 784, DEFAULT_CONFIGS[arch].latent_dim, key=f"train_latent_{arch}",
                             disabled=running, help="The size of the bottleneck: 4 bytes each as float32.")
    n_train = data.train_size
    recommended = default_settings(arch, data.full_dataset, n_train)
    epochs = c2.slider("Epochs", 1, MAX_EPOCHS, min(recommended.epochs, MAX_EPOCHS), key="train_epochs",
                       disabled=running)
    lr = c2.select_slider("Learning rate", [1e-4, 3e-4, 1e-3, 3e-3, 1e-2], value=recommended.lr, key=f"train_lr_{arch}",
                          format_func=lambda v: f"{v:g}", disabled=running)
    batch = c3.select_slider("Batch size", [16, 32, 64, 128, 256], value=recommended.batch_size, key="train_batch",
                             disabled=running)
    size = c3.slider("Training digits", min(100, n_train), n_train, recommended.train_size or n_train,
                     step=100 if n_train > 1000 else 10, key="train_size", disabled=running,
                     help="A random subset of the training digits.")
    name = st.text_input("Save as", suggest_name(arch, int(latent)), key=f"train_name_{arch}_{latent}",
                         disabled=running, help="Letters, digits, '-', '_' and '.'; saved in the user models folder.")
    settings = TrainSettings(model=arch, latent_dim=int(latent), epochs=epochs, lr=lr, batch_size=batch,
                             train_size=size, report_every=report_every(size, batch), device="auto")
    est = estimate(settings, n_train, budget)
    need = f"your settings need {est.steps:,} steps"
    if est.seconds is not None:
        need += (f", about {format_seconds(est.seconds)} at {est.digits_per_s:,.0f} digits/s (the last "
                 f"{SHORT_TITLES.get(arch, arch)} training here)")
    over = ((budget.seconds and est.seconds and est.seconds > budget.seconds)
            or (est.budget_steps and est.steps > est.budget_steps))
    st.caption(f"Each training may use at most {budget.describe()} on this server, one at a time for everybody; "
               f"{need}." + (" It will stop at the budget and save what it has learned by then." if over else ""))
    try:
        offered = presets(arch, data.full_dataset, n_train)
    except (AEError, KeyError, ValueError, TypeError):  # a shipped card without its training record
        offered = {}
    if offered:
        cols = st.columns(len(offered) + 1, vertical_alignment="center")
        cols[0].markdown("**Presets**")
        notes = []
        for col, (pname, preset) in zip(cols[1:], offered.items()):
            col.button(f"{pname} · about {format_seconds(preset.expected_seconds)}", key=f"train_preset_{pname.replace(' ', '_')}",
                       on_click=apply_preset, args=(arch, preset.settings, n_train), disabled=running,
                       help=preset.about)
            note = f"**{pname}**: {preset.about}, about {format_seconds(preset.expected_seconds)} on this server"
            if budget.seconds and preset.expected_seconds > budget.seconds:
                note += (f": longer than the {format_seconds(budget.seconds)} a training may use here, so it "
                         f"stops at the budget and saves what it has learned by then")
            notes.append(note)
        st.caption("Presets fill the settings above; " + "; ".join(notes) + ".")
    b1, b2, _ = st.columns([1, 1, 4])
    b1.button("Start training", type="primary", icon=":material/play_arrow:",
              disabled=running or busy or not is_valid_name(name),
              on_click=start, args=(settings, name, budget), key="train_start")
    b2.button("Stop", icon=":material/stop:", disabled=not running, on_click=stop, key="train_stop")
    if not is_valid_name(name):
        st.warning("Choose another name: letters, digits, '-', '_' or '.', and not ff, cnn or classifier.")
    elif not running and user_model_path(name).exists():
        st.caption(f"A model named **{name}** exists: nothing is overwritten, this one will be saved under "
                   f"the next free name ({name}-2, …).")
if "train_error" in st.session_state:
    st.error(st.session_state["train_error"])


@st.fragment(run_every=2.0 if busy else None)
def slot_status() -> None:
    """While another session trains: who, and how long it may still take; Start comes back when it ends."""
    if not busy:
        return
    now = TrainingSlot().holder()
    if now is None:
        st.rerun(scope="app")  # the slot is free: enable Start
    st.warning(busy_message(now) + " Start is disabled until then.", icon=":material/hourglass_top:")


slot_status()


@st.fragment(run_every=0.5 if running else None)
def progress() -> None:
    job = st.session_state.get(JOB)
    if job is None:
        st.info("Choose the settings and press **Start training**: the progress, the loss curves and "
                "reconstructions of held-out digits update live while it learns.", icon=":material/model_training:")
        return
    snap = job.snapshot()
    if not snap.finished and not snap.steps:
        text = "starting the training process…"
    else:
        text = f"epoch {snap.epoch} of {snap.epochs} · {snap.examples_per_s:,.0f} digits/s · {snap.seconds:.0f} s"
    if snap.seconds_left is not None:
        text += f" · {format_seconds(snap.seconds_left)} left of the budget"
    st.progress(min(max(snap.progress, 0.0), 1.0), text=f"{job.name} (you): {text}")
    if not snap.finished and job.budget.heartbeat_s:
        st.caption(f"Keep this page open while it trains: when no Train page has shown its progress for "
                   f"{format_seconds(job.budget.heartbeat_s)}, the training stops and saves what it has.")
    chart, pics = st.columns([1.2, 1], gap="large")
    with chart:
        st.plotly_chart(loss_chart(snap), key="train_loss_chart", config={"displayModeBar": False})
        st.caption("Mean squared pixel error: training loss between reports, validation loss after each epoch.")
    with pics:
        if snap.preview is not None:
            st.image(strip([digit_image(d, 48) for d in snap.preview[0]]), output_format="PNG", caption="validation digits")
            st.image(strip([digit_image(d, 48) for d in snap.preview[1]]), output_format="PNG", caption="their reconstructions right now")
    if snap.status == "failed":
        st.error(f"Training failed: {snap.error}")
    elif snap.finished and snap.saved_path is None:
        st.warning(f"{outcome_text(snap)} before its first progress report: nothing was saved.")
    elif snap.finished:
        renamed = f" (**{job.name}** was taken)" if snap.name != job.name else ""
        st.success(f"{outcome_text(snap)} as **{snap.name}**{renamed} ({snap.seconds:.0f} s) to your models folder. "
                   f"It is now selected in the sidebar of the Draw, Gallery and Latent explorer pages.",
                   icon=":material/check_circle:")
        if st.session_state.get("train_selected") != str(snap.saved_path):  # once: a later upload may be chosen
            for entry in list_models((job.settings.model,)):
                if entry.path == snap.saved_path:
                    st.session_state[f"model_{job.settings.model}"] = entry.label
                    st.session_state["train_selected"] = str(snap.saved_path)
        try:
            saved = Path(snap.saved_path)
            archive = model_zip(str(saved), saved.stat().st_mtime)
        except (AEError, OSError) as exc:
            st.warning(f"The download is not available: {exc}")
        else:
            st.download_button(f"Download {snap.name}.zip", archive, file_name=f"{snap.name}.zip", mime="application/zip",
                               icon=":material/download:", on_click="ignore", key="train_download",
                               help="Its weights (.safetensors) and card (.json), the files the CLI writes, in one "
                                    "zip: one file to keep, and to upload again below to use it in a later visit.")
    if running and snap.finished:
        st.rerun(scope="app")  # re-enable the settings and the Start button


progress()


with st.container(border=True):
    st.markdown("**Use a model you downloaded**")
    generation = st.session_state.get("upload_generation", 0)
    st.file_uploader("Its .zip, or its .safetensors and .json together", type=list(UPLOAD_TYPES),
                     accept_multiple_files=True, key=f"train_upload_{generation}", on_change=upload_model,
                     args=(f"train_upload_{generation}",), max_upload_size=MAX_UPLOAD_BYTES // 2**20 + 1,
                     help="Checked like the models folder (its card, its size, the sha256 of its weights; "
                          "safetensors only) and kept in this browser session only: nothing is saved on the server.")
    kind, text = st.session_state.get("upload_message", (None, None))
    if kind == "error":
        st.error(f"Not uploaded: {text}")
    elif kind == "success":
        st.success(f"**{text}** is selected in the sidebar of the Draw, Gallery and Latent explorer pages, "
                   f"for this session only.", icon=":material/check_circle:")
    uploaded = st.session_state.get(UPLOADED_MODELS, [])
    if uploaded:
        st.caption("Uploaded in this session: " + ", ".join(e.label for e in uploaded)
                   + f" (at most {MAX_SESSION_UPLOADS}; they are gone when the session ends).")
