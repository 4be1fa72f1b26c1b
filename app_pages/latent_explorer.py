"""Move through a model's latent space: sliders along the directions digits vary most,
interpolation between two digits, and a 2-D map of the test digits' latents."""
import numpy as np
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from ae.analysis import reconstruct_digit
from ae.browser_decoder import neuron_directions, pca_directions
from ae.display import digit_image, strip
from ae.errors import AEError
from ae.latent import decode, encode_all, fit_pca, interpolate, most_varying_dims, move_dims
from app_pages.common import ARCH_TITLES, SHORT_TITLES, choose_digit, load_entry, pick_models, pick_test_digit, show_digit, mnist_test_digits
from app_pages.latent_decoder import browser_decoder, frontend_built, live_map, live_sliders
from app_pages.shared_view import linked_choice, linked_offsets, publish, publish_offsets, share_link

SLIDERS = 6
CLASS_COLOURS = px.colors.qualitative.D3  # ten clearly different colours, one per digit class
MAP_POINTS = 2000
HOVER_POINTS = 1000  # drawn on the in-browser map (sent as JSON on every rerun)


@st.cache_resource(show_spinner="Encoding the test digits…", max_entries=8)
def latent_space(_model, path: str, mtime: float, n_digits: int):
    """Latents of the test digits, their principal directions and most varying neurons
    (keyed by the weights file and its time, so a retrained model is encoded afresh)."""
    data = mnist_test_digits()
    z = encode_all(_model, data.images).numpy()
    return z, data.labels.numpy(), fit_pca(z, k=max(SLIDERS, 2)), most_varying_dims(z, SLIDERS)


def stored_offsets(slider_key: str, n: int) -> list[float]:
    """The slider offsets of this model and mode: one list for the browser's sliders and the plain ones."""
    offsets = st.session_state.setdefault(f"{slider_key}_offsets", linked_offsets(n, 3.0, "latent_offsets") or [0.0] * n)
    offsets[:] = (list(offsets) + [0.0] * n)[:n]
    return offsets


def remember_slider(slider_key: str, i: int) -> None:
    st.session_state[f"{slider_key}_offsets"][i] = st.session_state[f"{slider_key}_{i}"]


def reset_sliders(slider_key: str) -> None:
    for i in range(SLIDERS):
        st.session_state[f"{slider_key}_{i}"] = 0.0
    st.session_state.pop(f"{slider_key}_offsets", None)


def released_point(message, view: str) -> list[float] | None:
    """A map position clicked in the browser, else None."""
    if not (isinstance(message, dict) and message.get("view") == view):
        return None
    got = message.get("point")
    if isinstance(got, list) and len(got) == 2 and all(isinstance(v, (int, float)) and np.isfinite(v) for v in got):
        return [float(np.clip(v, -1e3, 1e3)) for v in got]
    return None


def released_offsets(message, view: str, n: int) -> list[float] | None:
    """New offsets from the browser's sliders (a release not applied yet), else None."""
    if not (isinstance(message, dict) and message.get("view") == view and "seq" in message):
        return None
    if message["seq"] == st.session_state.get("latent_decoder_applied"):
        return None
    st.session_state["latent_decoder_applied"] = message["seq"]
    got = message.get("offsets")
    if not (isinstance(got, list) and len(got) == n and all(isinstance(o, (int, float)) for o in got)):
        return None  # not from our sliders: ignore it
    return [float(np.clip(o, -3.0, 3.0)) for o in got]


st.title("Latent explorer")
models = pick_models()
arch = st.segmented_control("Model", ["ff", "cnn"], format_func=SHORT_TITLES.get, key="latent_arch", required=True,
                            default=linked_choice("model", ["ff", "cnn"], "latent_arch") or "ff")
publish("model", arch)
entry = models.get(arch)
if entry is None:
    st.info(f"No {ARCH_TITLES[arch].lower()} is available: restore `weights/` or train one on the Train page.")
    st.stop()
try:
    model = load_entry(entry)
except AEError as exc:
    st.error(f"Cannot load {entry.name}: {exc}")
    st.stop()
z_all, labels, pca, (dims, dim_stds) = latent_space(model, *entry.cache_key, len(mnist_test_digits()))
st.caption(f"{entry.label}. Latent statistics from the {mnist_test_digits().source}.")

left, right = st.columns([1, 1.4], gap="large")
with left:
    st.subheader("Starting digit")
    digit, caption = choose_digit("latent")
    if digit is None:
        st.info(caption)
        st.stop()
    start = reconstruct_digit(model, digit)
    a, b = st.columns(2)
    show_digit(digit, caption, 128, where=a)
    show_digit(start.image, "its reconstruction", 128, where=b)

with right:
    st.subheader("Move the latent")
    mode = st.radio("Sliders move", ["principal directions", "single neurons"], horizontal=True, key="latent_slider_mode",
                    index=int(linked_choice("sliders", ["directions", "neurons"], "latent_slider_mode") == "neurons"),
                    help="Principal directions: the directions along which test digits' latents vary most (PCA). "
                         "Single neurons: the latent neurons with the largest spread.")
    publish("sliders", "neurons" if mode == "single neurons" else "directions")
    slider_key = f"latent_{entry.name}_{mode}"
    n = min(SLIDERS, len(pca.explained), len(dims))  # a tiny latent has fewer
    if mode == "principal directions":
        slider_labels = [f"direction {i + 1} ({100 * pca.explained[i]:.0f}% of variance)" for i in range(n)]
    else:
        slider_labels = [f"neuron {dims[i]} (σ = {dim_stds[i]:.2f})" for i in range(n)]
    offsets = stored_offsets(slider_key, n)
    in_browser = browser_decoder(model, *entry.cache_key) if frontend_built() else None
    live = in_browser is not None and st.toggle(
        "Redraw while dragging", value=True, key="latent_live",
        help="Decodes in your browser as a slider moves (the decoder is sent once per model). "
             "Off: plain sliders, decoded on the server when you let go.")
    browser_ok = False
    if live:
        # The component's sliders replace the plain ones once it has said it decodes (in AppTest,
        # or where its scripts fail to load, it never does: the plain sliders stay).
        view = f"{in_browser.sha256}:{slider_key}"
        message = st.session_state.get("latent_decoder")
        if isinstance(message, dict) and message.get("ready"):
            st.session_state["latent_browser_ok"] = True
        browser_ok = st.session_state.get("latent_browser_ok", False)
        released = released_offsets(message, view, n)
        if released is not None:
            offsets[:] = released
        directions = pca_directions(pca, n) if mode == "principal directions" \
            else neuron_directions(dims[:n], dim_stds[:n], model.latent_dim)
        live_sliders("latent_decoder", in_browser, view, start.latent, directions, slider_labels, offsets,
                     active=browser_ok)
    if browser_ok:
        st.caption("Offsets on the server: " + ", ".join(f"{o:+.1f}" for o in offsets)
                   + " (sent when you let go of a slider)")
        st.button("Reset sliders", icon=":material/restart_alt:", on_click=reset_sliders, args=(slider_key,))
    else:
        sliders, picture = st.columns([1.2, 1], gap="medium")
        with sliders:
            for i, label in enumerate(slider_labels):
                if st.session_state.get(f"{slider_key}_{i}") != offsets[i]:
                    st.session_state[f"{slider_key}_{i}"] = offsets[i]  # moved in the browser meanwhile
                st.slider(label, -3.0, 3.0, step=0.1, key=f"{slider_key}_{i}", help="in standard deviations",
                          on_change=remember_slider, args=(slider_key, i))
        moved = pca.move(start.latent, offsets) if mode == "principal directions" else move_dims(start.latent, dims[:n], offsets, dim_stds[:n])
        with picture:
            show_digit(decode(model, moved)[0], "decoded from the moved latent", 224)
            st.button("Reset sliders", icon=":material/restart_alt:", on_click=reset_sliders, args=(slider_key,))
    publish_offsets(offsets)
    st.caption("Slider offsets are in standard deviations of the test digits' latents along each direction; "
               "the decoder redraws the digit from the moved latent alone.")

st.divider()
st.subheader("Interpolate to another digit")
c1, c2 = st.columns([1, 2], gap="large")
with c1:
    other, other_caption = pick_test_digit("latent_other", default_class=1, link="to")
    steps = st.slider("Steps", 3, 12, 8, key="latent_steps")
with c2:
    end = reconstruct_digit(model, other)
    path = decode(model, interpolate(start.latent, end.latent, steps))
    st.image(strip([digit_image(d, 72) for d in path]),
             output_format="PNG", caption=f"straight line in latent space from the starting digit to {other_caption}")

st.divider()
st.subheader("Map of the latent space")
show = min(MAP_POINTS, len(z_all))
xy = pca.coords(z_all[:show])[:, :2]
fig = go.Figure()
for c in range(10):
    mask = labels[:show] == c
    fig.add_trace(go.Scattergl(x=xy[mask, 0], y=xy[mask, 1], mode="markers", name=str(c),
                               marker=dict(size=5, opacity=0.75, color=CLASS_COLOURS[c]), customdata=np.flatnonzero(mask),
                               hovertemplate=f"digit {c} · #%{{customdata}}<extra></extra>"))
here = pca.coords(start.latent)[0]
fig.add_trace(go.Scatter(x=[here[0]], y=[here[1]], mode="markers", name="starting digit",
                         marker=dict(symbol="star", size=16, color="black")))
fig.update_layout(height=460, margin=dict(l=10, r=10, t=10, b=10), legend_title_text="class",
                  xaxis_title="principal direction 1", yaxis_title="principal direction 2")
m1, m2 = st.columns([2, 1], gap="large")
with m1:
    event = st.plotly_chart(fig, on_select="rerun", selection_mode="points", key=f"latent_map_{entry.name}")
    st.caption(f"First two principal directions of {show:,} test digits' latents "
               f"({100 * pca.explained[:2].sum():.0f}% of their variance), coloured by class. Click a point.")
with m2:
    points = (event.selection.points if event and event.selection else []) or []
    picked = [p for p in points if p.get("curve_number", 10) < 10 and p.get("point_index") is not None]
    if not picked:
        st.info("Click a point on the map to decode it.")
    else:
        p = picked[0]
        i = int(np.flatnonzero(labels[:show] == p["curve_number"])[p["point_index"]])
        show_digit(mnist_test_digits().images[i, 0], f"test digit #{i} (label {labels[i]})", 112)
        show_digit(decode(model, z_all[i])[0], "decoded from its full latent", 112)
        show_digit(decode(model, pca.latent_at([p["x"], p["y"]]))[0],
                   "decoded from its map position alone (other directions at the mean)", 112)

if browser_ok:
    st.markdown("**Hover over this map to decode any position** (in your browser); click to keep one.")
    h1, h2 = st.columns([2, 1], gap="large")
    with h1:
        map_view = f"{in_browser.sha256}:{entry.name}:map"
        hover_n = min(HOVER_POINTS, len(xy))
        clicked = released_point(live_map("latent_map_decoder", in_browser, map_view, pca.mean, pca.components[:2],
                                          xy[:hover_n], labels[:hover_n]), map_view)
    with h2:
        if clicked is None:
            st.info("Click a position on the map to decode it on the server too.")
        else:
            show_digit(decode(model, pca.latent_at(clicked))[0],
                       f"decoded on the server at ({clicked[0]:.2f}, {clicked[1]:.2f})", 112)

share_link()
