"""Draw a digit (or upload one) and see both autoencoders compress it."""
import streamlit as st

from app_pages.common import (IMAGE_UPLOAD_HELP, clear_canvas, digit_from_canvas, digit_from_upload,
                              draw_canvas, pick_models, side_by_side, timed_fragment, warm_up)
from app_pages.shared_view import share_link

st.title("Draw a digit")
st.caption("Draw with the mouse (or a finger) on the black square. After each stroke the digit is "
           "scaled and centred like MNIST's, then both autoencoders compress and rebuild it.")
models = pick_models()
warm_up(models)


@timed_fragment("draw")
def canvas_and_results(models) -> None:
    # A fragment: a stroke, the stroke width, Clear or an upload reruns only this part, not
    # the page and its sidebar. The models come from the last whole run (a new pick reruns all).
    pad, canvas_col, options_col = st.columns([0.02, 1, 1.6], gap="medium")
    with options_col:
        stroke = st.slider("Stroke width (px)", 6, 40, 18, key="draw_stroke")
        st.button("Clear the canvas", icon=":material/delete:", on_click=clear_canvas, args=("draw_canvas",))
        st.caption("The canvas's own toolbar (top right, on hover) has undo, redo and reset too.")
        upload = st.file_uploader("…or upload an image of a digit instead", key="draw_upload", help=IMAGE_UPLOAD_HELP)
    with canvas_col:
        drawing = draw_canvas("draw_canvas", stroke)

    digit, caption = None, ""
    if upload is not None:
        digit, error = digit_from_upload(upload)
        if error:
            options_col.error(f"{upload.name}: {error}")
        caption = f"from {upload.name}, scaled to 28×28"
    if digit is None:
        digit = digit_from_canvas(drawing)
        caption = "your drawing, scaled to 28×28"

    st.divider()
    if digit is None:
        st.info("Draw a digit on the black square (or upload an image) to see it compressed.", icon=":material/gesture:")
    else:
        side_by_side(digit, caption, models, key="draw")


canvas_and_results(models)
share_link()  # the models only: a drawing is not in the URL
