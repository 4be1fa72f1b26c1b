"""Digits in a few bytes: the Streamlit app. This file routes the pages and holds the Home page.

Start it with `streamlit run app.py` (or `bash scripts/app.sh`)."""
import logging
import os
import sys
import threading

# Imported whole before any page runs: plotly looks pandas up in sys.modules without importing
# it, so a session could otherwise meet a half-imported pandas while another session imports it.
import pandas  # noqa: F401
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from ae.run_log import timed_run

log = logging.getLogger("ae.app")


def _in_background(work) -> None:
    try:
        work()
    except Exception:  # a warm-up is only a head start: the page that needs it reports problems
        log.exception("background warm-up failed")


def _cold_start() -> None:
    """The first page of a fresh server imports PyTorch and friends (seconds): say so at once
    instead of leaving the page blank, and start loading what the next pages need."""
    starting = st.empty()
    starting.info("Starting up: loading PyTorch and the models (a few seconds, once per server)…",
                  icon=":material/hourglass_top:")
    import torch

    # One torch thread per script run: the models are tiny, so a second thread mostly waits
    # (measured: more CPU per digit with two), and the sessions' runs share the cores instead.
    threads = os.environ.get("AE_TORCH_THREADS", "1")
    torch.set_num_threads(max(1, int(threads)) if threads.isdigit() else 1)
    import app_pages.common  # noqa: F401  (the heavy imports every page shares)
    from ae.analysis import warm_codec
    from ae.registry import codec_status

    # While this page loads its own models, load the codec's coders for Draw and Send & receive
    # (plain objects of ae.codec, no Streamlit state).
    threading.Thread(target=_in_background, args=(lambda: warm_codec(codec_status()),),
                     name="warm-codec", daemon=True).start()
    starting.empty()


def home() -> None:
    from ae.errors import AEError
    from ae.layer_diagram import to_dot
    from ae.registry import list_models, shipped_entry
    from app_pages.common import SHORT_TITLES, codec, load_entry

    st.title("Digits in a few bytes")
    st.markdown(
        "Two autoencoders squeeze a handwritten digit (28×28 = 784 pixels) through a narrow "
        "**latent** layer and rebuild it from there. The latent is all a receiver needs, so it is a "
        "compressed copy of the digit; an entropy coder packs it into a few bytes.\n\n"
        "- **Draw** a digit and watch both models compress it, with the real byte counts.\n"
        "- **Gallery** and **Latent explorer** show what the models learned from MNIST.\n"
        "- **Send & receive** turns a digit into a payload file and decodes one back.\n"
        "- **Compare** puts the models beside PNG, WebP and friends; **Train** retrains them live."
    )
    classifier_entry = shipped_entry("classifier")
    cols = st.columns(2, gap="large")
    for col, arch in zip(cols, ("ff", "cnn")):
        with col:
            st.subheader(SHORT_TITLES[arch])
            entry = shipped_entry(arch)
            if entry is None:
                st.warning(f"The shipped weights `weights/{arch}.safetensors` are missing: restore them with "
                           f"`git checkout weights/` or train one on the Train page.")
                entry = next(iter(list_models((arch,))), None)
                if entry is None:
                    continue
                st.caption(f"Showing your model {entry.name} instead.")
            try:
                model = load_entry(entry)
            except AEError as exc:
                st.error(str(exc))
                continue
            m = entry.metrics
            a, b, c = st.columns(3)
            a.metric("Latent neurons", f"{model.latent_dim}", help=f"{4 * model.latent_dim} bytes as float32")
            b.metric("PSNR", f"{m['psnr']:.1f} dB" if "psnr" in m else "—",
                     help="Peak signal-to-noise ratio of the reconstructions, mean over test digits.")
            c.metric("Read correctly", f"{100 * m['accuracy']:.1f}%" if "accuracy" in m else "—",
                     help="Share of reconstructions the digit classifier reads as the right digit.")
            params = m.get("parameters") or entry.card.get("parameters")
            note = f"{params:,} parameters · " if params else ""
            note += f"measured on {entry.card['metrics_data']}" if entry.card.get("metrics_data") else "not measured yet"
            st.caption(note + (f" · `{entry.card['metrics_command']}`" if entry.card.get("metrics_command") else ""))
            st.graphviz_chart(to_dot(model, horizontal=False), width="content")
            st.caption("Layers with the tensor shape after each (channels×height×width); the latent in red.")
    if classifier_entry is not None and "accuracy" in classifier_entry.metrics:
        st.caption(f"The digit classifier that judges reconstructions reads "
                   f"{100 * classifier_entry.metrics['accuracy']:.2f}% of the original test digits correctly.")
    status = codec()
    if status.available:
        st.subheader("Coded operating points")
        def shown(value, fmt: str) -> str:
            return fmt.format(value) if isinstance(value, (int, float)) else "not measured yet"

        st.table([{"point": p.name, "what": p.label,
                   "mean payload": shown(p.metrics.get("mean_bytes"), "{:.1f} B"),
                   "PSNR": shown(p.metrics.get("psnr"), "{:.1f} dB"),
                   "read correctly": shown(p.metrics.get("accuracy"), "{:.1%}")} for p in status.points],
                 hide_index=True)
        st.caption("The codec's own rate–distortion models; figures from their weights cards. "
                   "Send & receive turns a digit into such a payload file and back.")
    else:
        st.caption(f"Entropy codec: {status.message}")


@st.fragment(run_every=20)
def keep_training_alive(job) -> None:
    """While this session's training runs, tell it the session is still here from any page
    (the Train page's own polling does it there); a closed tab stops beating and frees the slot."""
    job.heartbeat()


st.set_page_config(page_title="Digits in a few bytes", page_icon="✏️", layout="wide")
navigation = st.navigation([
    st.Page(home, title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/draw.py", title="Draw", icon=":material/draw:"),
    st.Page("app_pages/gallery.py", title="Gallery", icon=":material/grid_view:"),
    st.Page("app_pages/latent_explorer.py", title="Latent explorer", icon=":material/tune:"),
    st.Page("app_pages/send_receive.py", title="Send & receive", icon=":material/swap_horiz:"),
    st.Page("app_pages/compare.py", title="Compare", icon=":material/monitoring:"),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
])
ctx = get_script_run_ctx()
with timed_run(ctx.session_id if ctx else "-", navigation.title, "page"):
    st.session_state["_run_log_page"] = navigation.title  # fragment runs log under this page
    try:
        if "torch" not in sys.modules:
            _cold_start()
        job = st.session_state.get("training_job")  # app_pages/train.py's JOB
        if job is not None and navigation.title != "Train" and not job.snapshot(heartbeat=False).finished:
            keep_training_alive(job)  # before the page: a page may end its run with st.stop()
        navigation.run()
    except Exception as exc:  # last line of defence: a message on the page, the traceback in the server log
        # Only the kind of failure: the exception's text can hold server paths or data.
        log.exception("page %s failed", navigation.title)
        st.error(f"Something went wrong on this page (an internal error of kind {type(exc).__name__}). "
                 f"Reload the page to try again; the details are in the server's log.", icon=":material/error:")
