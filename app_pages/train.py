"""Retrain an autoencoder live. The training runs in a worker thread (ae.live_training) on its
own model; this page only starts it, stops it and redraws its progress every half second."""
import plotly.graph_objects as go
import streamlit as st

from ae.catalog import is_valid_name, list_models, suggest_name
from ae.data import dataset_available
from ae.display import digit_image, strip
from ae.errors import AEError
from ae.live_training import LiveTraining, report_every, training_data
from ae.models import DEFAULT_CONFIGS
from ae.train import TrainSettings
from ae.weights import user_models_dir
from app_pages.common import SHORT_TITLES

JOB = "training_job"


@st.cache_resource(show_spinner="Loading the training digits…")
def cached_training_data(full: bool):
    return training_data()


def start(settings: TrainSettings, name: str) -> None:
    st.session_state.pop("train_error", None)
    try:
        st.session_state[JOB] = LiveTraining(settings, cached_training_data(dataset_available()), name).start()
    except (AEError, ValueError) as exc:
        st.session_state["train_error"] = str(exc)


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
           f"as a new model in `{user_models_dir()}` (the shipped weights are never touched) and can then "
           "be picked in the sidebar of the other pages.")
try:
    data = cached_training_data(dataset_available())
except AEError as exc:
    st.error(str(exc))
    st.stop()
(st.caption if data.full_dataset else st.info)(data.note)

job: LiveTraining | None = st.session_state.get(JOB)
running = job is not None and not job.snapshot().finished

with st.container(border=True):
    c1, c2, c3 = st.columns(3, gap="medium")
    arch = c1.segmented_control("Architecture", ["ff", "cnn"], format_func=SHORT_TITLES.get, default="cnn",
                                key="train_arch", required=True, disabled=running)
    latent = c1.number_input("Latent neurons", 2, 784, DEFAULT_CONFIGS[arch].latent_dim, key=f"train_latent_{arch}",
                             disabled=running, help="The size of the bottleneck: 4 bytes each as float32.")
    epochs = c2.slider("Epochs", 1, 30, 3, key="train_epochs", disabled=running)
    lr = c2.select_slider("Learning rate", [1e-4, 3e-4, 1e-3, 3e-3, 1e-2], value=1e-3, key="train_lr",
                          format_func=lambda v: f"{v:g}", disabled=running)
    batch = c3.select_slider("Batch size", [16, 32, 64, 128, 256], value=128, key="train_batch", disabled=running)
    n_train = len(data.train)
    size = c3.slider("Training digits", min(100, n_train), n_train, min(n_train, 10_000), step=100 if n_train > 1000 else 10,
                     key="train_size", disabled=running, help="A random subset of the training digits.")
    name = st.text_input("Save as", suggest_name(arch, int(latent)), key=f"train_name_{arch}_{latent}",
                         disabled=running, help="Letters, digits, '-', '_' and '.'; saved in the user models folder.")
    settings = TrainSettings(model=arch, latent_dim=int(latent), epochs=epochs, lr=lr, batch_size=batch,
                             train_size=size, report_every=report_every(size, batch), device="auto")
    b1, b2, _ = st.columns([1, 1, 4])
    b1.button("Start training", type="primary", icon=":material/play_arrow:", disabled=running or not is_valid_name(name),
              on_click=start, args=(settings, name), key="train_start")
    b2.button("Stop", icon=":material/stop:", disabled=not running, on_click=stop, key="train_stop")
    if not is_valid_name(name):
        st.warning("Choose another name: letters, digits, '-', '_' or '.', and not ff, cnn or classifier.")
if "train_error" in st.session_state:
    st.error(st.session_state["train_error"])


@st.fragment(run_every=0.5 if running else None)
def progress() -> None:
    job = st.session_state.get(JOB)
    if job is None:
        st.info("Choose the settings and press **Start training**: the progress, the loss curves and "
                "reconstructions of held-out digits update live while it learns.", icon=":material/model_training:")
        return
    snap = job.snapshot()
    text = f"epoch {snap.epoch} of {snap.epochs} · {snap.examples_per_s:,.0f} digits/s · {snap.seconds:.0f} s"
    st.progress(min(max(snap.progress, 0.0), 1.0), text=f"{job.name}: {text}")
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
        st.warning("Stopped before the first step: nothing was saved.")
    elif snap.finished:
        verb = "Stopped early and saved" if snap.status == "stopped" else "Finished and saved"
        st.success(f"{verb} **{job.name}** ({snap.seconds:.0f} s) to `{snap.saved_path}`. It is now selected in "
                   f"the sidebar of the Draw, Gallery and Latent explorer pages.", icon=":material/check_circle:")
        for entry in list_models((job.settings.model,)):
            if entry.path == snap.saved_path:
                st.session_state[f"model_{job.settings.model}"] = entry.label
    if running and snap.finished:
        st.rerun(scope="app")  # re-enable the settings and the Start button


progress()
