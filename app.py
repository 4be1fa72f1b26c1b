"""Digits in a few bytes: the Streamlit app. This file starts the server's first page and routes the pages (app_pages/).

Start it with `streamlit run app.py` (or `bash scripts/app.sh`)."""
import logging
import os
import sys
import threading

import ae  # noqa: F401  (first: its thread settings must reach numpy before numpy loads)

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


@st.fragment(run_every=20)
def keep_training_alive(job) -> None:
    """While this session's training runs, tell it the session is still here from any page
    (the Train page's own polling does it there); a closed tab stops beating and frees the slot."""
    job.heartbeat()


st.set_page_config(page_title="Digits in a few bytes", page_icon="✏️", layout="wide")
navigation = st.navigation([
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
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
