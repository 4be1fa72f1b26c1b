"""Digits in a few bytes: the Streamlit app. This file routes the pages and holds the Home page.

Start it with `streamlit run app.py` (or `bash scripts/app.sh`)."""
import streamlit as st


def home() -> None:
    from ae.architecture import to_dot
    from ae.catalog import shipped_entry
    from ae.errors import AEError
    from pages.common import ARCH_TITLES, codec, load_entry

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
            st.subheader(ARCH_TITLES[arch])
            entry = shipped_entry(arch)
            if entry is None:
                st.info(f"The shipped weights `weights/{arch}.safetensors` are missing: restore them with "
                        f"`git checkout weights/` or train one on the Train page.")
                continue
            try:
                model = load_entry(entry)
            except AEError as exc:
                st.error(str(exc))
                continue
            st.graphviz_chart(to_dot(model, horizontal=False), width="stretch")
            m = entry.metrics
            a, b, c = st.columns(3)
            a.metric("Latent", f"{model.latent_dim} neurons", help="float32: 4 bytes each")
            b.metric("PSNR", f"{m['psnr']:.1f} dB" if "psnr" in m else "—")
            c.metric("Read correctly", f"{100 * m['accuracy']:.1f}%" if "accuracy" in m else "—",
                     help="Share of reconstructions the digit classifier reads as the right digit.")
            params = m.get("parameters") or entry.card.get("parameters")
            note = f"{params:,} parameters · " if params else ""
            note += f"measured on {entry.card['metrics_data']}" if entry.card.get("metrics_data") else "not measured yet"
            st.caption(note + (f" · `{entry.card['metrics_command']}`" if entry.card.get("metrics_command") else ""))
    if classifier_entry is not None and "accuracy" in classifier_entry.metrics:
        st.caption(f"The digit classifier that judges reconstructions reads "
                   f"{100 * classifier_entry.metrics['accuracy']:.2f}% of the original test digits correctly.")
    status = codec()
    if status.available:
        st.subheader("Coded operating points")
        st.dataframe([{"point": p.name, "model": p.arch, "what": p.label,
                       "mean bytes per digit": p.card.get("mean_bytes"), "PSNR (dB)": p.card.get("psnr"),
                       "read correctly": p.card.get("accuracy")} for p in status.points],
                     hide_index=True, column_config={
                         "mean bytes per digit": st.column_config.NumberColumn(format="%.1f B"),
                         "PSNR (dB)": st.column_config.NumberColumn(format="%.1f dB"),
                         "read correctly": st.column_config.NumberColumn(format="percent")})
    else:
        st.caption(f"Entropy codec: {status.message}")


st.set_page_config(page_title="Digits in a few bytes", page_icon="✏️", layout="wide")
navigation = st.navigation([
    st.Page(home, title="Home", icon=":material/home:", default=True),
    st.Page("pages/draw.py", title="Draw", icon=":material/draw:"),
    st.Page("pages/gallery.py", title="Gallery", icon=":material/grid_view:"),
    st.Page("pages/latent_explorer.py", title="Latent explorer", icon=":material/tune:"),
    st.Page("pages/send_receive.py", title="Send & receive", icon=":material/swap_horiz:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/monitoring:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
])
navigation.run()
