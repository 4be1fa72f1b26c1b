"""Both architectures and the classic image codecs on the same digits, from the committed
benchmark (`weights/benchmark.json`, written by `python -m ae benchmark`)."""
import json

import plotly.express as px
import streamlit as st

from ae.catalog import shipped_entry
from ae.weights import WEIGHTS_DIR

BENCHMARK = WEIGHTS_DIR / "benchmark.json"
FAMILY_NAMES = {"raw": "raw pixels", "latent": "plain latent", "neural": "neural codec", "classic": "classic codec"}

st.title("Compare")
st.caption("Bytes per digit against quality, on the same digits, for the autoencoders and the usual "
           "image codecs.")

try:
    bench = json.loads(BENCHMARK.read_text())
    results, meta = bench["results"], bench.get("meta", {})
    if not isinstance(results, list) or not results:
        raise ValueError("no results")
except FileNotFoundError:
    st.info(f"No benchmark yet: `{BENCHMARK.relative_to(WEIGHTS_DIR.parent)}` is missing. "
            "Run `python -m ae benchmark` to measure every method on the same digits; this page then "
            "shows the rate–distortion chart and table.", icon=":material/monitoring:")
    st.stop()
except (OSError, ValueError, KeyError, TypeError) as exc:
    st.error(f"`{BENCHMARK.name}` cannot be read ({exc}). Rerun `python -m ae benchmark` to rewrite it.")
    st.stop()

rows = [{"method": r.get("label") or r.get("method"), "family": FAMILY_NAMES.get(r.get("family"), r.get("family")),
         "setting": r.get("setting") or "", "bytes per digit": r.get("bytes_per_digit"), "PSNR (dB)": r.get("psnr"),
         "SSIM": r.get("ssim"), "read correctly": r.get("accuracy"),
         "digits/s (batch)": r.get("digits_per_s_batch"), "ms per digit (single)": r.get("ms_single")}
        for r in results if isinstance(r, dict)]
st.caption(" · ".join(f"{k}: {meta[k]}" for k in ("data", "digits", "machine", "date") if meta.get(k))
           + (f" · `{meta['command']}`" if meta.get("command") else ""))

metric = st.segmented_control("Quality measure", ["PSNR (dB)", "SSIM", "read correctly"], default="PSNR (dB)",
                              key="compare_metric", required=True)
plotted = [r for r in rows if r["bytes per digit"] and r[metric] is not None]
fig = px.line(plotted, x="bytes per digit", y=metric, color="method", markers=True, log_x=True,
              hover_data=["setting", "family"], height=480)
fig.update_layout(margin=dict(l=10, r=10, t=10, b=10), xaxis_title="bytes per digit (log scale)")
st.plotly_chart(fig, key="compare_chart")
st.caption("Up and to the left is better: fewer bytes for the same quality. 'Read correctly' is the share "
           "of decoded digits the shipped classifier reads as the right digit.")

st.subheader("All results")
st.dataframe(rows, hide_index=True, column_config={
    "bytes per digit": st.column_config.NumberColumn(format="%.1f B"),
    "PSNR (dB)": st.column_config.NumberColumn(format="%.2f dB"),
    "SSIM": st.column_config.NumberColumn(format="%.3f"),
    "read correctly": st.column_config.NumberColumn(format="percent"),
    "digits/s (batch)": st.column_config.NumberColumn(format="%,.0f"),
    "ms per digit (single)": st.column_config.NumberColumn(format="%.2f ms")})

st.subheader("The models")
model_rows = []
for name in ("ff", "cnn", "classifier"):
    entry = shipped_entry(name)
    if entry is not None:
        m = entry.metrics
        model_rows.append({"model": name, "latent": entry.latent_dim or None,
                           "parameters": m.get("parameters") or entry.card.get("parameters"),
                           "digits/s (batch)": m.get("digits_per_s"),
                           "trained on": entry.card.get("dataset", "")})
if model_rows:
    st.dataframe(model_rows, hide_index=True, column_config={
        "parameters": st.column_config.NumberColumn(format="%,d"),
        "digits/s (batch)": st.column_config.NumberColumn(format="%,.0f")})
else:
    st.info("No shipped weights found in `weights/`.")
