"""Pieces every page shares: cached loaders, model pickers, digit pickers and the
side-by-side view of both autoencoders. UI only: the computing happens in `ae`."""
from __future__ import annotations

import base64
import functools
import re

import numpy as np
import plotly.graph_objects as go
import pyarrow as pa
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from ae import analysis
from ae.analysis import AutoencoderView, CodedPayload, DrawView, SizeBar
from ae.data import dataset_available, load_digits
from ae.display import digit_image, latent_grid_shape, latent_image
from ae.errors import AEError, NothingDrawn
from ae.images import as_digit_array
from ae.preprocess import drawing_to_digit, image_file_to_digit
from ae.registry import CodecStatus, ModelEntry, codec_status, list_models, shipped_entry, skipped_models
from ae.run_log import timed_run
from ae.sample import load_sample
from ae.sizes import RAW_DIGIT_BYTES, png_encode
from ae.view_state import DigitChoice, format_digit, parse_choice, parse_digit
from ae.weights import load_model
from app_pages.shared_view import from_link, publish

ARCH_TITLES = {"ff": "Feedforward autoencoder", "cnn": "Convolutional autoencoder"}
SHORT_TITLES = {"ff": "Feedforward (FF)", "cnn": "Convolutional (CNN)"}
SIZE_COLOURS = {"pixels": "#7f7f7f", "float32": "#ff7f0e", "8-bit": "#1f77b4", "coded": "#2ca02c"}
UPLOADED_MODELS = "uploaded_models"  # session state: this session's uploaded models, never shared
IMAGE_UPLOAD_HELP = "PNG, JPEG, GIF, WebP or BMP; a dark digit on light paper or a light digit on black."


# ---- loaders: shared by every session, so treat what they return as read-only ----

@st.cache_resource(show_spinner="Loading model…", max_entries=16)
def _load_model(path: str, mtime: float):
    return load_model(path)


def load_entry(entry: ModelEntry):
    if getattr(entry, "model", None) is not None:  # an upload (ae.model_transfer): loaded, in this session only
        return entry.model
    return _load_model(*entry.cache_key)


def load_or_explain(entry: ModelEntry):
    """The model, or None after telling the user why it cannot be loaded."""
    try:
        return load_entry(entry)
    except AEError as exc:
        st.error(f"Cannot load {entry.name}: {exc}")
        return None


@st.cache_resource(show_spinner=False, ttl=60)
def classifier_entry() -> ModelEntry | None:
    # Its card is read from disk: once a minute is often enough (a rerun per stroke was not).
    return shipped_entry("classifier")


def classifier():
    """The shipped digit classifier, or None (the pages then skip 'what it reads')."""
    entry = classifier_entry()
    if entry is None:
        return None
    try:
        return load_entry(entry)
    except AEError:
        return None


@st.cache_resource(show_spinner=False)
def _mnist_test_digits(full: bool):
    # apart: torchvision (~160 MB, for good) reads in a child, not in the server process
    return load_digits("test", apart=True) if full else load_sample()


def mnist_test_digits():
    """The MNIST test set when a data folder is present, else the bundled 1,000-digit sample."""
    full = dataset_available()
    try:
        return _mnist_test_digits(full)
    except AEError:
        return _mnist_test_digits(False)


@st.cache_resource(show_spinner=False, ttl=120)
def codec() -> CodecStatus:
    return codec_status()


def warm_up(models: dict[str, ModelEntry | None]) -> None:
    """Load the models and the codec's coders before the first stroke, so the first drawing
    is answered as fast as the later ones (loading is the slow part, once per process)."""
    for entry in models.values():
        if entry is not None:
            try:
                load_entry(entry)
            except AEError:
                pass  # reported where the model is used
    _size_chart_template()
    classifier()
    _warm_codec()


@st.cache_resource(show_spinner=False, ttl=120)
def _warm_codec() -> None:
    analysis.warm_codec(codec())


# ---- fragments that report their runs to the run log ----

def timed_fragment(name: str):
    """`st.fragment`, and each rerun of the fragment alone is one line "fragment:<name>" in the
    run log (AE_RUN_LOG, see ae.run_log). Run as part of a whole page, it is counted in the
    page's line."""
    def decorate(func):
        @functools.wraps(func)
        def body(*args, **kwargs):
            ctx = get_script_run_ctx()
            if ctx is None or not ctx.fragment_ids_this_run:
                return func(*args, **kwargs)
            with timed_run(ctx.session_id, st.session_state.get("_run_log_page", ""), f"fragment:{name}"):
                return func(*args, **kwargs)
        return st.fragment(body)
    return decorate


# ---- model choice, remembered across pages ----

def pick_models(where=st.sidebar) -> dict[str, ModelEntry | None]:
    """One autoencoder per architecture; the choice is kept in session state for every page."""
    chosen = {}
    for arch in ("ff", "cnn"):
        entries = list_models((arch,)) + [e for e in st.session_state.get(UPLOADED_MODELS, []) if e.arch == arch]
        if not entries:
            chosen[arch] = None
            continue
        labels = [e.label for e in entries]
        linked = from_link(arch, lambda text: parse_choice(text, [e.name for e in entries], "model"), f"_pick_{arch}")
        if linked is not None:  # a shared link's model, by name
            st.session_state[f"model_{arch}"] = next(e.label for e in entries if e.name == linked)
        remembered = st.session_state.get(f"model_{arch}")
        index = labels.index(remembered) if remembered in labels else 0
        label = where.selectbox(ARCH_TITLES[arch], labels, index=index, key=f"_pick_{arch}")
        st.session_state[f"model_{arch}"] = label
        chosen[arch] = entries[labels.index(label)]
        publish(arch, chosen[arch].name)
    if all(e is None for e in chosen.values()):
        st.error("No autoencoder weights found: `weights/ff.safetensors` and `weights/cnn.safetensors` "
                 "are missing. Restore them with `git checkout weights/` or train one on the Train page.")
    skipped = skipped_models()
    if skipped:  # file names and reasons only, markdown-escaped: they come from the folder
        def plain(text: str) -> str:
            return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$:])", r"\\\1", text)
        where.caption(f"Not offered: {', '.join(plain(name) for name, _ in skipped[:5])}"
                      + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""),
                      help="\n\n".join(f"{plain(name)}: {plain(why)}" for name, why in skipped[:20]))
    return chosen


def missing_model_note(arch: str) -> None:
    st.info(f"No {ARCH_TITLES[arch].lower()} is available: its shipped weights are missing and no "
            f"trained one was found. Train one on the **Train** page.")


# ---- digits in, pictures out ----

def show_digit(digit, caption: str, size: int = 140, where=None, stretch: bool = False) -> None:
    """A digit picture `size` px wide (or as wide as its column with `stretch`), pixels kept sharp."""
    (where or st).image(png_data_url(digit_image(digit, size)), caption=caption,
                        width="stretch" if stretch else size)


def png_data_url(picture) -> str:
    # PNG's fastest level (half the time of the default, a few hundred bytes more), sent inside
    # the page's message as a data URL: no media file to store and no request to serve per picture.
    return f"data:image/png;base64,{base64.b64encode(png_encode(picture, fast=True)).decode()}"


def digit_from_upload(upload):
    """An uploaded image file -> (digit, None), or (None, message) for anything unusable."""
    try:
        return image_file_to_digit(upload), None
    except NothingDrawn:
        return None, "That image holds no visible digit strokes."
    except AEError as exc:
        return None, str(exc)


def digit_from_canvas(image_data):
    """Canvas pixels -> digit, or None while nothing is drawn."""
    if image_data is None:
        return None
    try:
        return drawing_to_digit(np.asarray(image_data))
    except AEError:
        return None


def draw_canvas(key: str, stroke_width: int = 18, size: int = 280):
    """The drawing canvas (black paper, white ink). Imported here only: the component cannot be
    imported outside a running app. Cleared by giving it a new key."""
    from streamlit_drawable_canvas import st_canvas

    generation = st.session_state.get(f"{key}_generation", 0)
    result = st_canvas(stroke_width=stroke_width, stroke_color="#FFFFFF", background_color="#000000",
                       height=size, width=size, drawing_mode="freedraw", return_image_data=True,
                       key=f"{key}_{generation}")
    return result.image_data


def clear_canvas(key: str) -> None:
    st.session_state[f"{key}_generation"] = st.session_state.get(f"{key}_generation", 0) + 1


def pick_test_digit(key: str, where=None, default_class: int = 7, link: str | None = "digit") -> tuple[np.ndarray, str]:
    """Choose a test digit by class and position, or at random. Returns (digit, description).
    The choice is the URL's `link` parameter (a random digit is shared by its index)."""
    where = where or st
    data = mnist_test_digits()
    labels = data.labels.numpy()
    # A link's digit becomes the widgets' defaults: they apply when the widgets are first created
    # (a keyed widget keeps its value when its default changes), with no Session State API writes.
    start = (link and from_link(link, lambda text: parse_digit(text, len(data), np.bincount(labels, minlength=10)),
                                f"{key}_link")) or DigitChoice(cls=default_class)
    mode = where.segmented_control("Choose by", ["class", "index", "random"],
                                   default="index" if start.cls is None else "class", key=f"{key}_mode", required=True)
    if mode == "class":
        c1, c2 = where.columns(2)
        cls = c1.selectbox("Digit class", list(range(10)), index=default_class if start.cls is None else start.cls,
                           key=f"{key}_class")
        members = np.flatnonzero(labels == cls)
        nth = c2.number_input(f"Which one (1–{len(members)})", 1, len(members), start.nth, key=f"{key}_nth")
        index = int(members[nth - 1])
    elif mode == "index":
        index = int(where.number_input(f"Index in the set (0–{len(data) - 1})", 0, len(data) - 1, start.index or 0,
                                       key=f"{key}_index"))
    else:
        if f"{key}_random" not in st.session_state or where.button("Another random digit", key=f"{key}_reroll"):
            st.session_state[f"{key}_random"] = int(np.random.default_rng().integers(len(data)))
        index = min(st.session_state[f"{key}_random"], len(data) - 1)
    if link:
        publish(link, format_digit(DigitChoice(cls=cls, nth=int(nth)) if mode == "class" else DigitChoice(index=index)))
    return data.images[index, 0].numpy(), f"test digit #{index} · label {int(labels[index])}"


def choose_digit(key: str, sources=("Test set", "Draw", "Upload")) -> tuple[np.ndarray | None, str]:
    """A digit from the test set, a drawing or an uploaded image; (None, hint) until there is one."""
    source = st.segmented_control("Digit from", list(sources), default=sources[0], key=f"{key}_source",
                                  required=True)
    if source != sources[0]:
        publish("digit", None)  # a drawing or an upload is not in the link: it names no test digit
    if source == "Draw":
        width = st.slider("Stroke width (px)", 6, 40, 18, key=f"{key}_stroke")
        digit = digit_from_canvas(draw_canvas(f"{key}_canvas", width))
        st.button("Clear drawing", key=f"{key}_clear", on_click=clear_canvas, args=(f"{key}_canvas",))
        return digit, "your drawing" if digit is not None else "Draw a digit on the black square."
    if source == "Upload":
        upload = st.file_uploader("Image of a digit", key=f"{key}_upload", help=IMAGE_UPLOAD_HELP)
        if upload is None:
            return None, "Upload an image of a handwritten digit."
        digit, error = digit_from_upload(upload)
        if error:
            st.error(error)
            return None, "Try another image."
        return digit, f"your upload {upload.name}"
    return pick_test_digit(key)


# ---- charts ----

def _size_chart_values(bars: list[SizeBar]) -> tuple[dict, dict]:
    """The bar trace's data and the axes' extent, one per drawn digit."""
    sizes = [b.size for b in bars]
    trace = {"x": sizes, "y": [b.name for b in bars], "text": [b.label for b in bars],
             "marker": {"color": [SIZE_COLOURS[b.kind] for b in bars]}}
    # Log axis from a bit under the smallest payload, with room right of the longest bar for its label.
    xaxis = {"range": [float(np.log10(max(min(sizes), 1))) - 0.3, float(np.log10(max(sizes))) + 0.6]}
    return trace, {"xaxis": xaxis, "height": 70 + 26 * len(bars)}


def size_chart(bars: list[SizeBar]) -> go.Figure:
    """Every stored form of the digit as a horizontal bar, log bytes, labelled bytes · PSNR."""
    trace, layout = _size_chart_values(bars)
    fig = go.Figure(go.Bar(orientation="h", textposition="outside", cliponaxis=False, x=trace["x"], y=trace["y"],
                           text=trace["text"], marker_color=trace["marker"]["color"],
                           hovertemplate="%{y}: %{text}<extra></extra>"))
    fig.update_xaxes(type="log", title_text="bytes (log scale)", range=layout["xaxis"]["range"],
                     tickvals=[1, 3, 10, 30, 100, 300, 1000, 3000])
    fig.update_yaxes(autorange="reversed", automargin=True)  # raw pixels on top, the smallest payloads below
    fig.update_layout(height=layout["height"], margin=dict(l=10, r=10, t=10, b=50))
    return fig


@st.cache_resource(show_spinner=False)
def _size_chart_template() -> dict:
    """size_chart's validated figure for one placeholder bar, as a dict (read-only)."""
    return size_chart([SizeBar("raw pixels", RAW_DIGIT_BYTES, None, "pixels")]).to_dict()


def quick_size_chart(bars: list[SizeBar]) -> go.Figure:
    """The same figure as size_chart without plotly validating it again per stroke."""
    template = _size_chart_template()
    values, layout = _size_chart_values(bars)
    trace = {**template["data"][0], **values, "marker": {**template["data"][0]["marker"], **values["marker"]}}
    xaxis = {**template["layout"]["xaxis"], **layout["xaxis"]}
    return go.Figure({"data": [trace], "layout": {**template["layout"], "xaxis": xaxis, "height": layout["height"]}},
                     _validate=False)


def show_size_chart(view: DrawView, key: str) -> None:
    st.subheader("How many bytes?")
    # Static: hovering would only repeat each bar's label, and a static plot is cheaper to redraw.
    st.plotly_chart(quick_size_chart(view.bars), key=f"{key}_sizes", config={"displayModeBar": False, "staticPlot": True})
    st.caption("Each bar is a payload that exists and decodes: its length in bytes, and the PSNR of what it "
               "decodes back to against this digit (raw pixels and PNG hold the 8-bit digit itself: lossless). "
               "A float32 latent takes 4 bytes a neuron, so the FF's 196 neurons weigh as much as the raw digit; "
               "8-bit codes take one byte a neuron plus the 8-byte range; the codec entropy-codes its integer "
               "latents. The tables below have the details.")


# ---- the side-by-side view of both autoencoders ----

@st.cache_data(show_spinner=False, max_entries=256, ttl=3600)
def _draw_view(digit_bytes: bytes, model_keys: tuple, classifier_key, codec_key: tuple,
               _models: dict, _classifier, _status: CodecStatus) -> DrawView:
    # Keyed by the digit's bytes and what identifies each model file (path, mtime), so a rerun
    # that shows the same digit (any session's) reuses it; the _-arguments are not hashed.
    # st.cache_data hands every caller its own copy.
    digit = np.frombuffer(digit_bytes, dtype=np.float32).reshape(28, 28)
    return analysis.draw_view_data(digit, _models, _classifier, _status)


def draw_view(digit, models: dict[str, ModelEntry | None]) -> tuple[DrawView, dict[str, str]]:
    """Everything the side-by-side view shows for this digit, computed once per digit and models;
    and, by architecture, why a chosen model could not be loaded."""
    loaded, errors = {}, {}
    for arch, entry in models.items():
        if entry is not None:
            try:
                loaded[arch] = load_entry(entry)
            except AEError as exc:
                errors[arch] = f"Cannot load {entry.name}: {exc}"
    model_keys = tuple((arch, *models[arch].cache_key) for arch in sorted(loaded))
    clf_entry, clf = classifier_entry(), classifier()
    status = codec()
    codec_key = (status.message, *(p.name for p in status.points))
    view = _draw_view(as_digit_array(digit).tobytes(), model_keys,
                      clf_entry.cache_key if clf is not None else None, codec_key, loaded, clf, status)
    return view, errors


def small_table(rows: list[dict]) -> None:
    # An Arrow table goes to the browser as it is; a list of dicts would pass through pandas.
    st.table(pa.Table.from_pylist(rows), hide_index=True)


def show_input_digit(view: DrawView, caption: str) -> None:
    show_digit(view.digit, caption, 168)
    small_table([{"form": f.name, "size": f"{f.size} B"} for f in view.pixel_forms])
    st.caption(" · ".join(f"{f.name}: {f.note}" for f in view.pixel_forms) + ".")


def show_autoencoder(arch: str, entry: ModelEntry | None, result: AutoencoderView | None, key: str,
                     error: str | None = None) -> None:
    st.subheader(SHORT_TITLES[arch])
    if entry is None:
        missing_model_note(arch)
        return
    if result is None:
        st.error(error or f"Cannot load {entry.name}.")
        return
    st.caption(f"model {entry.label}")
    left, right = st.columns([1, 1])
    show_digit(result.image, "reconstruction", 168, where=left, stretch=True)
    right.metric("PSNR", f"{result.psnr:.1f} dB", help="Peak signal-to-noise ratio against the input digit (higher is closer).")
    right.metric("SSIM", f"{result.ssim:.3f}", help="Structural similarity, 1.0 = identical.")
    if result.reading is not None:
        right.metric("Classifier reads", f"{result.reading.label}", help="What the shipped digit classifier sees in the reconstruction.",
                     delta=f"{100 * result.reading.confidence:.0f}% sure", delta_color="off", delta_arrow="off")
    show_latent(result.latent)
    rows = [{"form": f.name, "size": f"{f.size} B", "decoded PSNR": f"{f.decoded_psnr:.1f} dB"} for f in result.forms]
    notes = [f"{f.name}: {f.note}" for f in result.forms]
    small_table(rows)
    st.caption("; ".join(notes) + ". Decoded PSNR: what each form decodes back to, against the input digit.")


def show_latent(latent: np.ndarray, width: int = 168) -> None:
    # A picture, not a chart: a plotly chart cost the browser ~0.15 s to redraw on every stroke,
    # most of a page's redraw (the Latent explorer has the interactive view).
    rows, cols = latent_grid_shape(latent.size)
    picture = latent_image(latent, cell=max(4, width // cols))
    st.image(png_data_url(picture))
    peak = float(np.abs(latent).max())
    st.caption(f"The code itself: its {latent.size} latent neurons for this digit, {rows}×{cols} in reading order. "
               f"Red above zero, blue below, white at zero; the strongest is {peak:.2f}. The Latent explorer "
               "lets you change them.")


def side_by_side(digit, caption: str, models: dict[str, ModelEntry | None], key: str) -> None:
    view, errors = draw_view(digit, models)
    show_size_chart(view, key)
    cols = st.columns([0.8, 1.1, 1.1], gap="medium")
    with cols[0]:
        st.subheader("Input digit")
        show_input_digit(view, caption)
    for col, arch in zip(cols[1:], ("ff", "cnn")):
        with col:
            show_autoencoder(arch, models.get(arch), view.autoencoders.get(arch), key, errors.get(arch))
    show_coded_payloads(view.coded)


def show_coded_payloads(payloads: list[CodedPayload]) -> None:
    """The digit through the entropy codec at each operating point of its own coded model."""
    status = codec()
    st.subheader("Entropy-coded payloads")
    if not status.available:
        st.info(f"Codec not available: {status.message} Until it is, the sizes above (float32 and 8-bit "
                f"latents) are the smallest forms shown.", icon=":material/info:")
        return
    st.caption("The codec's rate–distortion autoencoder rounds its latent to integers and a range coder "
               "packs them; each size is the whole payload file a receiver needs (header included).")
    per_row = min(len(payloads), 5)  # all of today's five points on one row
    for start in range(0, len(payloads), per_row):
        for col, coded in zip(st.columns(per_row), payloads[start:start + per_row]):
            with col.container(border=True):
                if coded.error:
                    st.warning(f"{coded.point}: {coded.error}")
                    continue
                # Picture above the figures: five cards to a row leave no room side by side.
                show_digit(coded.decoded, "decoded payload", 112)
                st.metric(f"{coded.point} payload", f"{coded.size} B", help=coded.label,
                          delta=f"{coded.psnr:.1f} dB PSNR", delta_color="off", delta_arrow="off")
                st.caption(f"{RAW_DIGIT_BYTES / coded.size:.0f}× smaller than the raw digit")


def pick_digit_set(key: str, where=None):
    """Several test digits: one class or all, a count and a reshuffle. Returns (images, labels, text)."""
    where = where or st
    data = mnist_test_digits()
    c1, c2, c3 = where.columns([1, 1, 1], vertical_alignment="bottom")
    cls = c1.selectbox("Class", ["all"] + list(range(10)), key=f"{key}_class")
    count = c2.slider("How many", 4, 20, 12, key=f"{key}_count")
    if c3.button("Shuffle", icon=":material/shuffle:", key=f"{key}_shuffle") or f"{key}_seed" not in st.session_state:
        st.session_state[f"{key}_seed"] = int(np.random.default_rng().integers(1 << 30))
    labels = data.labels.numpy()
    pool = np.arange(len(labels)) if cls == "all" else np.flatnonzero(labels == cls)
    chosen = np.random.default_rng(st.session_state[f"{key}_seed"]).choice(pool, size=min(count, len(pool)), replace=False)
    text = f"{len(chosen)} random {'digits' if cls == 'all' else f'{cls}s'} from the {data.source}"
    return data.images[chosen], data.labels[chosen], text
