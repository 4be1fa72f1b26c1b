"""Sender and receiver: a digit becomes a payload file of a few bytes, and a payload file
becomes a digit again. Every byte shown is the payload itself."""
import streamlit as st

from ae.codec import compress_digit, receive
from ae.display import digit_image, strip
from ae.errors import AEError
from ae.sizes import RAW_DIGIT_BYTES, picture_psnr
from ae.view_state import parse_choice
from app_pages.common import choose_digit, codec, show_digit
from app_pages.shared_view import from_link, publish, share_link

MAX_PAYLOAD_BYTES = 1_000_000  # a payload is a few bytes per digit; anything huge is not one
MAX_RECEIVE_DIGITS = 500  # the worst payload this page accepts then decodes in ~0.1 s (scripts/hostile_inputs.py)


def point_title(point) -> str:
    return point.label if point.label.startswith(point.name) else f"{point.name} — {point.label}"


def hand_over(hex_text: str) -> None:
    st.session_state["receive_hex"] = hex_text

st.title("Send & receive")
st.caption("The sender compresses a digit into a payload; the receiver needs nothing but those bytes "
           "(and the shipped weights) to rebuild it.")
status = codec()
if not status.available:
    st.warning(f"**Codec not available.** {status.message} Sending and receiving payloads needs the "
               f"entropy codec (`ae/codec.py` and its coded weights). The Draw page still shows float32 "
               f"and 8-bit latent sizes.", icon=":material/block:")
    st.stop()

send, receive_col = st.columns(2, gap="large")
with send:
    st.header("Sender", divider="red")
    point_names = [p.name for p in status.points]
    linked = from_link("point", lambda text: parse_choice(text, point_names, "operating point"), "send_point")
    if linked is not None:
        st.session_state["send_point"] = linked
    point_name = st.selectbox("Operating point", point_names, key="send_point",
                              format_func=lambda n: point_title(status.point(n)))
    publish("point", point_name)
    digit, caption = choose_digit("send")
    if digit is None:
        st.info(caption)
    else:
        try:
            payload = compress_digit(digit, status.point(point_name))
        except AEError as exc:
            st.error(f"Could not compress this digit: {exc}")
        else:
            a, b = st.columns(2)
            show_digit(digit, caption, 112, where=a)
            show_digit(payload.decoded[0], f"what the receiver will see ({picture_psnr(digit, payload.decoded[0]):.1f} dB PSNR)", 112, where=b)
            st.metric("Payload", f"{payload.size} bytes", help="len() of the bytes below: the whole file.",
                      delta=f"{RAW_DIGIT_BYTES / payload.size:.0f}× smaller than the {RAW_DIGIT_BYTES} B raw digit",
                      delta_color="off", delta_arrow="off")
            st.code(payload.data.hex(" "), language=None, wrap_lines=True)
            d1, d2 = st.columns(2)
            d1.download_button("Download payload", payload.data, file_name=f"digit-{point_name}.aez",
                               mime="application/octet-stream", icon=":material/download:", key="send_download")
            d2.button("Hand it to the receiver", icon=":material/arrow_forward:", key="send_hand_over",
                      on_click=hand_over, args=(payload.data.hex(" "),))

with receive_col:
    st.header("Receiver", divider="blue")
    upload = st.file_uploader("Payload file", key="receive_upload",
                              help="A file from the sender's Download button (or `python -m ae` codec commands).")
    pasted = st.text_input("…or paste the payload as hex", key="receive_hex", placeholder="e.g. 01 2f a3 …")
    data, origin = None, ""
    if upload is not None:
        data, origin = upload.read(MAX_PAYLOAD_BYTES + 1), upload.name
    elif pasted.strip():
        try:
            data, origin = bytes.fromhex(pasted.replace(":", " ")), "the pasted hex"
        except ValueError:
            st.error("That is not hexadecimal text: use pairs of 0-9/a-f characters, spaces allowed.")
    if data is None:
        st.info("Upload a payload file (or paste its hex) to decode it.", icon=":material/upload_file:")
    elif len(data) > MAX_PAYLOAD_BYTES:
        st.error(f"{origin} is larger than {MAX_PAYLOAD_BYTES:,} bytes: that is not a digit payload.")
    elif not data:
        st.error(f"{origin} is empty.")
    else:
        try:
            received = receive(data, max_digits=MAX_RECEIVE_DIGITS)
        except AEError as exc:
            st.error(f"{origin} could not be decoded: {exc}")
        else:
            n = len(received.decoded)
            st.success(f"Decoded {n} digit{'s' if n > 1 else ''} from {len(data)} bytes "
                       f"({received.point}).", icon=":material/check_circle:")
            if n == 1:
                show_digit(received.decoded[0], "the received digit", 168)
            else:
                st.image(strip([digit_image(d, 56) for d in received.decoded[:60]]),
                         output_format="PNG", caption=f"the received digits{' (first 60)' if n > 60 else ''}")

share_link()
