"""MNIST digits through both autoencoders: one in detail, many in a grid with error maps."""
import numpy as np
import streamlit as st

from ae.analysis import reconstruct_batch
from ae.display import digit_image, error_image, strip
from app_pages.common import ARCH_TITLES, classifier, load_or_explain, pick_digit_set, pick_models, pick_test_digit, side_by_side, mnist_test_digits
from app_pages.shared_view import share_link

st.title("Gallery")
data = mnist_test_digits()
st.caption(f"Digits from the {data.source}.")
models = pick_models()

with st.container(border=True):
    digit, caption = pick_test_digit("gallery")
side_by_side(digit, caption, models, key="gallery")

st.divider()
st.subheader("Many digits at once")
images, labels, description = pick_digit_set("gallery_grid")
tile = 56
st.caption(f"{description}. Error maps show |input − reconstruction| per pixel: black is exact, "
           f"red to yellow to white is off by up to 1.0.")
st.image(strip([digit_image(d, tile) for d in images[:, 0]]), output_format="PNG", caption="input digits")
for arch in ("ff", "cnn"):
    entry = models.get(arch)
    if entry is None:
        continue
    model = load_or_explain(entry)
    if model is None:
        continue
    result = reconstruct_batch(model, images, classifier())
    read = ""
    if result.readings is not None:
        right = np.mean([r.label == int(l) for r, l in zip(result.readings, labels)])
        read = f", the classifier reads {100 * right:.0f}% of them correctly"
    st.markdown(f"**{ARCH_TITLES[arch]}** ({entry.name}): mean PSNR {result.psnr.mean():.1f} dB{read}")
    st.image(strip([digit_image(d, tile) for d in result.images[:, 0]]), output_format="PNG", caption="reconstructions")
    st.image(strip([error_image(x, y, tile) for x, y in zip(images[:, 0], result.images[:, 0])]),
             output_format="PNG", caption="error maps")

share_link()
