// The decoder of an autoencoder rebuilt in the browser from a blob made by ae/browser_decoder.py:
// a safetensors file (float32 weights) whose metadata lists the operations. TensorFlow.js runs
// the operations; this file only reads the blob and wires them. Loaded as a plain script
// (defines window.LatentDecoder) or with require() (tests and checks under node).
(function (root) {
  "use strict";

  function readBlob(bytes) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const headerLength = Number(view.getBigUint64(0, true));
    if (headerLength <= 0 || 8 + headerLength > bytes.byteLength) throw new Error("not a decoder blob");
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
    const start = 8 + headerLength;
    const tensors = {};
    for (const [name, info] of Object.entries(header)) {
      if (name === "__metadata__") continue;
      if (info.dtype !== "F32") throw new Error(`tensor ${name} is ${info.dtype}, not F32`);
      const [from, to] = info.data_offsets;
      // slice() copies into a fresh, 4-byte aligned buffer
      tensors[name] = { shape: info.shape, data: new Float32Array(bytes.slice(start + from, start + to).buffer) };
    }
    return { tensors, metadata: header.__metadata__ || {} };
  }

  // -> {latentDim, decode(z: Float32Array) -> Float32Array(784) in [0, 1], dispose()}
  function buildDecoder(tf, bytes) {
    const { tensors, metadata } = readBlob(bytes);
    const spec = JSON.parse(metadata.decoder);
    const ops = spec.ops;
    const latentDim = Number(spec.latent_dim);
    const weights = {};
    for (const [name, t] of Object.entries(tensors)) weights[name] = tf.tensor(t.data, t.shape, "float32");

    function forward(z) {
      let x = tf.tensor2d(z, [1, latentDim]);
      for (const op of ops) {
        if (op.op === "dense") x = tf.add(tf.matMul(x, weights[op.w]), weights[op.b]);
        else if (op.op === "relu") x = tf.relu(x);
        else if (op.op === "sigmoid") x = tf.sigmoid(x);
        else if (op.op === "to_image") x = tf.transpose(tf.reshape(x, [1, ...op.chw]), [0, 2, 3, 1]);  // NCHW -> NHWC
        else if (op.op === "deconv") x = tf.add(tf.conv2dTranspose(x, weights[op.w], [1, ...op.out], op.stride, op.pad), weights[op.b]);
        else throw new Error(`unknown decoder op ${op.op}`);
      }
      return x;
    }

    return {
      latentDim,
      decode(z) {
        const out = tf.tidy(() => forward(z));
        const pixels = out.dataSync();
        out.dispose();
        return pixels;
      },
      dispose() { for (const w of Object.values(weights)) w.dispose(); },
    };
  }

  // start + sum_i offsets[i] * directions[i]: directions are (k, D) rows already scaled by their std
  function movedLatent(start, directions, offsets) {
    const z = Float32Array.from(start);
    for (let i = 0; i < offsets.length; i++) {
      const o = offsets[i], d = directions[i];
      if (o !== 0) for (let j = 0; j < z.length; j++) z[j] += o * d[j];
    }
    return z;
  }

  const api = { readBlob, buildDecoder, movedLatent };
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  else root.LatentDecoder = api;
})(typeof window !== "undefined" ? window : globalThis);
