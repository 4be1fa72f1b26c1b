// The Latent explorer's sliders, decoded in the browser: a Streamlit (components v1) iframe.
// Python sends the start latent, the slider directions and, only when asked, the decoder blob
// (ae/browser_decoder.py), which this page keeps in IndexedDB under its sha256. While a slider
// moves, each animation frame decodes the moved latent here; only a release sends the offsets
// back to Python (one rerun per release, none per drag event).
(function () {
  "use strict";
  const tf = window.tf;
  const stats = { draws: 0, decodeMs: 0, fetched: 0, cached: 0 };  // read by the browser test and the redraw script
  window.latentDecoderStats = stats;

  let args = null, decoder = null, decoderSha = null, offsets = [], dragging = false;
  let lastServerOffsets = null, lastView = null, pendingFrame = false, asked = null, readySent = false;
  let seq = Date.now();  // a new iframe never repeats an old release's number
  const built = new Map();  // sha256 -> decoder (this iframe's lifetime)
  const lookups = new Map();  // sha256 -> pending IndexedDB read

  // ---- the Streamlit component protocol (postMessage to the parent page) ----
  function send(type, data) {
    window.parent.postMessage(Object.assign({ isStreamlitMessage: true, type }, data), "*");
  }
  const setValue = (value) => send("streamlit:setComponentValue", { value, dataType: "json" });
  const setHeight = () => send("streamlit:setFrameHeight", { height: document.body.scrollHeight });

  // ---- the decoder cache: IndexedDB, one record per blob sha256 ----
  function openDb() {
    return new Promise((resolve, reject) => {
      const req = indexedDB.open("ae-latent-decoder", 1);
      req.onupgradeneeded = () => req.result.createObjectStore("blobs");
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }
  async function cached(sha) {
    try {
      const db = await openDb();
      return await new Promise((resolve) => {
        const req = db.transaction("blobs").objectStore("blobs").get(sha);
        req.onsuccess = () => resolve(req.result ? new Uint8Array(req.result) : null);
        req.onerror = () => resolve(null);
      });
    } catch (e) { return null; }  // private mode or storage blocked: ask the server instead
  }
  async function store(sha, bytes) {
    try {
      const db = await openDb();
      db.transaction("blobs", "readwrite").objectStore("blobs").put(bytes.slice().buffer, sha);
    } catch (e) { /* not cached: asked again next time */ }
  }
  async function sha256(bytes) {
    const digest = await crypto.subtle.digest("SHA-256", bytes);
    return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // Renders arrive while a lookup is still running: one lookup and one decoder per sha256.
  function install(sha, bytes, fromServer) {
    if (!built.has(sha)) {
      built.set(sha, LatentDecoder.buildDecoder(tf, bytes));
      if (fromServer) { stats.fetched += 1; store(sha, bytes); } else stats.cached += 1;
    }
    return built.get(sha);
  }
  async function ensureDecoder(sha, blob) {
    if (built.has(sha)) return built.get(sha);
    if (blob && blob.length) {
      const bytes = Uint8Array.from(atob(blob), (c) => c.charCodeAt(0));
      if ((await sha256(bytes)) === sha) return install(sha, bytes, true);
    }
    if (!lookups.has(sha)) {
      lookups.set(sha, cached(sha).then(async (bytes) => (bytes && (await sha256(bytes)) === sha ? bytes : null)));
    }
    const bytes = await lookups.get(sha);
    if (built.has(sha)) return built.get(sha);
    if (bytes) return install(sha, bytes, false);
    lookups.delete(sha);
    if (asked !== sha) { asked = sha; setValue({ need: sha, req: ++seq }); }  // one rerun brings the blob
    return null;
  }

  // ---- drawing ----
  const canvas = document.getElementById("digit");
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(28, 28);

  function draw() {
    pendingFrame = false;
    if (!decoder || !args) return;
    const t0 = performance.now();
    const z = LatentDecoder.movedLatent(args.start, args.directions, offsets);
    const pixels = decoder.decode(z);
    for (let i = 0; i < pixels.length; i++) {
      const v = Math.round(Math.min(1, Math.max(0, pixels[i])) * 255);
      image.data[4 * i] = image.data[4 * i + 1] = image.data[4 * i + 2] = v;
      image.data[4 * i + 3] = 255;
    }
    ctx.putImageData(image, 0, 0);
    stats.decodeMs = performance.now() - t0;
    stats.draws += 1;
    stats.offsets = offsets.slice();
  }
  function redrawSoon() {
    if (!pendingFrame) { pendingFrame = true; requestAnimationFrame(draw); }
  }

  // ---- sliders ----
  const box = document.getElementById("sliders");
  const fmt = (v) => (v > 0 ? "+" : "") + v.toFixed(1);

  function buildSliders() {
    box.textContent = "";
    args.labels.forEach((text, i) => {
      const row = document.createElement("div");
      row.className = "slider";
      const label = document.createElement("label");
      const name = document.createElement("span");
      const value = document.createElement("span");
      name.textContent = text;
      label.append(name, value);
      const input = document.createElement("input");
      Object.assign(input, { type: "range", min: args.min, max: args.max, step: args.step, value: offsets[i] });
      input.setAttribute("aria-label", text);
      input.dataset.index = String(i);
      value.textContent = fmt(offsets[i]);
      input.addEventListener("pointerdown", () => { dragging = true; });
      input.addEventListener("input", () => {  // every movement: redraw here, tell nobody
        offsets[i] = Number(input.value);
        value.textContent = fmt(offsets[i]);
        redrawSoon();
      });
      input.addEventListener("change", () => {  // the release (or a key press): the server learns
        dragging = false;
        offsets[i] = Number(input.value);
        setValue({ view: args.view, offsets: offsets.slice(), seq: ++seq });
      });
      row.append(label, input);
      box.append(row);
    });
  }

  // ---- the 2-D map (kind "map"): hover decodes a position, a click tells the server ----
  // args.points: [[x, y, class], ...] along the first two principal directions; args.start is
  // the latents' mean and args.directions the two (unit) directions, so offsets = [x, y].
  const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  let map = null;

  function buildMap() {
    box.textContent = "";
    const side = args.map_size || 320;
    const xs = args.points.map((p) => p[0]), ys = args.points.map((p) => p[1]);
    const pad = (lo, hi) => { const m = 0.05 * (hi - lo || 1); return [lo - m, hi + m]; };
    const [x0, x1] = pad(Math.min(...xs), Math.max(...xs)), [y0, y1] = pad(Math.min(...ys), Math.max(...ys));
    const cnv = document.createElement("canvas");
    cnv.id = "map";
    cnv.width = cnv.height = side;
    cnv.style.cursor = "crosshair";
    const note = document.createElement("div");
    note.className = "caption";
    box.append(cnv, note);
    map = { cnv, note, side, toData: (px, py) => [x0 + (px / side) * (x1 - x0), y1 - (py / side) * (y1 - y0)],
            toPixel: (x, y) => [((x - x0) / (x1 - x0)) * side, ((y1 - y) / (y1 - y0)) * side] };
    const place = (event) => {
      const r = cnv.getBoundingClientRect();
      offsets = map.toData(event.clientX - r.left, event.clientY - r.top);
      drawMap();
      redrawSoon();
    };
    cnv.addEventListener("pointermove", place);  // hover or drag: redraw here, tell nobody
    cnv.addEventListener("pointerdown", place);
    cnv.addEventListener("pointerup", () => {  // the release: the server learns the position
      setValue({ view: args.view, point: offsets.slice(), seq: ++seq });
    });
    drawMap();
  }

  function drawMap() {
    const g = map.cnv.getContext("2d");
    g.fillStyle = "#fff";
    g.fillRect(0, 0, map.side, map.side);
    for (const [x, y, c] of args.points) {
      const [px, py] = map.toPixel(x, y);
      g.fillStyle = COLOURS[c % 10];
      g.fillRect(px - 1.5, py - 1.5, 3, 3);
    }
    const [px, py] = map.toPixel(offsets[0], offsets[1]);
    g.strokeStyle = "#000";
    g.beginPath();
    g.moveTo(px - 8, py); g.lineTo(px + 8, py); g.moveTo(px, py - 8); g.lineTo(px, py + 8);
    g.stroke();
    map.note.textContent = `position (${offsets[0].toFixed(2)}, ${offsets[1].toFixed(2)}): hover to decode, click to keep`;
  }

  async function onRender(data) {
    args = data.args;
    const serverOffsets = JSON.stringify(args.offsets);
    if (args.view !== lastView) {
      lastView = args.view;
      offsets = args.offsets.slice();
      if (args.kind === "map") buildMap(); else buildSliders();
      document.querySelector("#picture .caption").textContent =
        `decoded in your browser as you ${args.kind === "map" ? "hover" : "drag"}`;
    } else if (args.kind === "map") {
      // the map keeps its own position between reruns
    } else if (serverOffsets !== lastServerOffsets && !dragging) {  // e.g. "Reset sliders"
      offsets = args.offsets.slice();
      box.querySelectorAll("input").forEach((input, i) => { input.value = offsets[i]; input.previousSibling.lastChild.textContent = fmt(offsets[i]); });
    }
    lastServerOffsets = serverOffsets;
    const size = args.size || 224;
    canvas.style.width = canvas.style.height = `${size}px`;
    document.getElementById("root").classList.toggle("on", !!args.active);
    const sha = args.sha;
    const built = await ensureDecoder(sha, args.blob);
    if (!built || sha !== args.sha) return;
    decoder = built; decoderSha = sha; stats.sha = sha;
    draw();
    setHeight();
    // "ready" lets the page drop its own sliders and stops the blob coming (it came only on request)
    if ((!args.active && !readySent) || (args.blob && args.blob.length)) { readySent = true; setValue({ ready: sha, seq: ++seq }); }
  }

  window.addEventListener("message", (event) => {
    if (event.data && event.data.type === "streamlit:render") {
      onRender(event.data).catch((e) => { console.error("latent decoder:", e); });
    }
  });
  window.addEventListener("resize", setHeight);
  tf.setBackend("cpu").then(() => send("streamlit:componentReady", { apiVersion: 1 }));
})();
