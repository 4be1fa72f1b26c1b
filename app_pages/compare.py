"""Both architectures and the classic image codecs on the same digits, from the committed
benchmark (`weights/benchmark.json`, written by `python -m ae benchmark`)."""
import math

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from ae.benchmark_results import BenchmarkUnavailable, load_benchmark
from ae.published import NOT_MEASURED, PUBLISHED, published_for
from ae.registry import shipped_entry

QUALITY = {"PSNR (dB)": "psnr", "SSIM": "ssim", "read correctly": "accuracy"}
PUBLISHED_GREY = "#7f7f7f"


def add_published_marks(fig: go.Figure, column: str, y_span: tuple[float, float]) -> None:
    """The published figures as grey marks of their own: open symbols for a lossy method's points,
    a dotted vertical line at a lossless method's bytes (it has every quality at its best there)."""
    for method in published_for(column):
        hover = [f"<b>{method.name}</b>, {p.setting}: {p.bytes_per_digit:.1f} B"
                 + ("" if p.psnr is None else f" at about {p.psnr:.1f} dB")
                 + f"<br>{method.conditions}<br>{method.citation}:<br><i>{method.title}</i><br>{NOT_MEASURED}"
                 for p in method.points]
        style = dict(name=method.name, legendgroup="published", legendgrouptitle_text=NOT_MEASURED,
                     hovertemplate="%{hovertext}<extra></extra>")
        if method.lossless:
            (point,) = method.points
            fig.add_trace(go.Scatter(x=[point.bytes_per_digit] * 2, y=list(y_span), mode="lines", hovertext=hover * 2,
                                     line=dict(color=PUBLISHED_GREY, dash="dot", width=2), **style))
            fig.add_annotation(x=math.log10(point.bytes_per_digit), y=1, yref="paper", xanchor="left", yanchor="top",
                               text=f" {method.short}: {point.bytes_per_digit:.0f} B",
                               showarrow=False, font=dict(color=PUBLISHED_GREY))  # log axis: x is log10(bytes)
        else:
            fig.add_trace(go.Scatter(x=[p.bytes_per_digit for p in method.points], y=[p.psnr for p in method.points],
                                     mode="markers", hovertext=hover, **style,
                                     marker=dict(symbol="diamond-open", size=11, color=PUBLISHED_GREY,
                                                 line=dict(width=2))))


st.title("Compare")
st.caption("Bytes per digit against quality on the same digits, for the autoencoders, the codec and the "
           "usual image codecs.")
try:
    bench = load_benchmark()
except BenchmarkUnavailable as exc:
    st.info(f"{exc} This page then shows the rate–distortion chart and the table.", icon=":material/monitoring:")
    st.stop()

meta = bench.meta
st.caption(" · ".join(f"{k}: {meta[k]}" for k in ("data", "digits", "machine", "date") if meta.get(k))
           + (f" · `{meta['command']}`" if meta.get("command") else ""))

quality = st.segmented_control("Quality measure", list(QUALITY), default="PSNR (dB)", key="compare_metric", required=True)
column = QUALITY[quality]
# Lossless methods have an infinite PSNR: they would squash every curve, so they are left out there.
plotted = sorted((r for r in bench.results if r["bytes_per_digit"] and r[column] is not None
                  and not (column == "psnr" and r["lossless"])),
                 key=lambda r: (r["series"], r["bytes_per_digit"]))
if plotted:
    fig = px.line(plotted, x="bytes_per_digit", y=column, color="series", markers=True, log_x=True,
                  hover_name="label", hover_data={"setting": True, "series": False}, height=520,
                  labels={"bytes_per_digit": "bytes per digit (log scale)", column: quality, "series": "method"},
                  color_discrete_sequence=px.colors.qualitative.Dark24)
    add_published_marks(fig, column, (min(r[column] for r in plotted), max(r[column] for r in plotted)))
    fig.update_layout(margin=dict(l=10, r=10, t=10, b=10))
    fig.update_xaxes(tickvals=[2, 5, 10, 20, 50, 100, 200, 500, 1000])
    st.plotly_chart(fig, key="compare_chart")
    lossless = ", ".join(f"{r['label']} {r['bytes_per_digit']:.0f} B" for r in bench.results if r["lossless"])
    lines = ", ".join(f"{m.short}'s lossless {p.bytes_per_digit:.0f} B" for m in PUBLISHED if m.lossless for p in m.points)
    st.caption("Up and to the left is better: fewer bytes for the same quality. 'Read correctly' is the share "
               "of decoded digits the shipped classifier reads as the right digit."
               + (f" Lossless methods ({lossless}) are not on the PSNR chart: their PSNR is infinite."
                  if lossless and column == "psnr" else "")
               + (f" The dotted line marks {lines}." if lines else ""))
    st.caption(f"Grey marks are figures {NOT_MEASURED}: " + "; ".join(
        f"{m.short} ({m.citation}), {m.conditions}" for m in published_for(column)) + ".")
else:
    st.info(f"The benchmark has no {quality} figures to plot.")

st.subheader("All results")
st.dataframe(
    [{"method": r["label"], "family": r["family"], "setting": r["setting"], "bytes per digit": r["bytes_per_digit"],
      "PSNR": None if r["lossless"] else r["psnr"], "lossless": r["lossless"], "SSIM": r["ssim"], "read correctly": r["accuracy"],
      "digits/s (batch)": r["digits_per_s_batch"], "ms per digit (alone)": r["ms_single"]} for r in bench.results],
    hide_index=True, column_config={
        "bytes per digit": st.column_config.NumberColumn(format="%.1f B"),
        "PSNR": st.column_config.NumberColumn(format="%.2f dB"),
        "SSIM": st.column_config.NumberColumn(format="%.3f"),
        "read correctly": st.column_config.NumberColumn(format="percent"),
        "digits/s (batch)": st.column_config.NumberColumn(format="%,.0f"),
        "ms per digit (alone)": st.column_config.NumberColumn(format="%.2f ms")})
st.caption("Grey 'None': not applicable. Lossless methods have no finite PSNR; raw pixels and the "
           "fixed-width and 8-bit latent forms are sizes of data that is not coded, so they are not timed.")

st.subheader("The models")
models = []
for name in ("ff", "cnn", "classifier"):
    entry = shipped_entry(name)
    if entry is not None:
        m = entry.metrics
        models.append({"model": name, "latent neurons": entry.latent_dim or None,
                       "parameters": m.get("parameters") or entry.card.get("parameters"),
                       "digits/s (batch)": m.get("digits_per_s"), "trained on": entry.card.get("dataset", "")})
if models:
    st.dataframe(models, hide_index=True, column_config={
        "parameters": st.column_config.NumberColumn(format="%,d"),
        "digits/s (batch)": st.column_config.NumberColumn(format="%,.0f")})
    st.caption("Parameters and batch throughput from the weights cards (`python -m ae evaluate --update-cards`).")
else:
    st.info("No shipped weights found in `weights/`.")
