"""Home: what the app is, both architectures as layer diagrams traced from the real models with
their measured figures, and the codec's operating points."""
import streamlit as st

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
