/* funml live views: small trained models running in the reader's browser (issue 24).
 *
 * Inlined by funml_lib/live_export.py into each view's output, next to a JSON script of class
 * "funml-live-data" that holds the compressed weights, a few test digits and reference outputs.
 * Plain JavaScript, no library, no request. Under Node (tests/test_live.py) the math part is
 * exported through `module.exports` and nothing touches a DOM.
 *
 * Each view pushes one object onto window.funmlLive (the contract with the site check):
 * {root, kind, ready, run(name, input), reference, tolerance, quantization, state(), lastUpdateMs,
 *  bytes}. run() computes a model's output as torch does and changes nothing on screen; state()
 * returns the outputs on screen now.
 */
(function () {
  "use strict";

  // ------------------------------------------------------------------ weights and dense layers
  function bytesOf(b64) {
    if (typeof atob !== "function") return new Uint8Array(Buffer.from(b64, "base64"));
    var bin = atob(b64), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function half(h) {  // IEEE float16 -> number (exact)
    var sign = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
    if (e === 0) return sign * f * Math.pow(2, -24);
    if (e === 31) return f ? NaN : sign * Infinity;
    return sign * (1 + f / 1024) * Math.pow(2, e - 15);
  }

  function floats32(b64) {  // little-endian float32 array
    var b = bytesOf(b64), v = new DataView(b.buffer), out = new Float32Array(b.length / 4);
    for (var i = 0; i < out.length; i++) out[i] = v.getFloat32(4 * i, true);
    return out;
  }

  // One layer: w (nout x nin, row-major) as float32, exactly the dequantized weights torch used.
  function decodeLayer(spec) {
    var n = spec.nin * spec.nout, w = new Float32Array(n), b = bytesOf(spec.w);
    if (spec.wtype === "int8") {
      var q = new Int8Array(b.buffer, 0, n), scale = floats32(spec.scale);
      for (var i = 0; i < spec.nout; i++) {
        for (var j = 0; j < spec.nin; j++) w[i * spec.nin + j] = q[i * spec.nin + j] * scale[i];
      }
    } else {
      var v = new DataView(b.buffer);
      for (var k = 0; k < n; k++) w[k] = half(v.getUint16(2 * k, true));
    }
    return {nin: spec.nin, nout: spec.nout, act: spec.act, w: w, b: floats32(spec.b)};
  }

  function decodeModels(data) {
    var models = {};
    Object.keys(data.models).forEach(function (name) {
      models[name] = data.models[name].layers.map(decodeLayer);
    });
    return models;
  }

  function dense(layer, x) {
    var y = new Float64Array(layer.nout), w = layer.w, nin = layer.nin, xs = [], idx = [];
    for (var j = 0; j < nin; j++) if (x[j] !== 0) { idx.push(j); xs.push(x[j]); }  // digits are mostly 0
    for (var i = 0; i < layer.nout; i++) {
      var s = layer.b[i], off = i * nin;
      for (var t = 0; t < idx.length; t++) s += w[off + idx[t]] * xs[t];
      y[i] = layer.act === "relu" ? (s > 0 ? s : 0) : layer.act === "sigmoid" ? 1 / (1 + Math.exp(-s)) : s;
    }
    return y;
  }

  function runLayers(layers, input) {
    if (input.length !== layers[0].nin) {
      throw new Error("input must hold " + layers[0].nin + " numbers, got " + input.length);
    }
    var x = Float64Array.from(input);
    for (var l = 0; l < layers.length; l++) x = dense(layers[l], x);
    return Array.from(x);
  }

  function maxDiff(a, b) {
    var m = 0;
    for (var i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
    return a.length === b.length ? m : Infinity;
  }

  // ------------------------------------------------------------ noise: seeded, as chapter 3 adds it
  function mulberry32(seed) {
    var a = seed >>> 0;
    return function () {
      a = (a + 0x6d2b79f5) >>> 0;
      var t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  function gaussians(seed, n) {  // Box-Muller on a seeded uniform generator
    var rand = mulberry32(seed), out = new Float64Array(n);
    for (var i = 0; i < n; i += 2) {
      var u = 1 - rand(), v = rand(), r = Math.sqrt(-2 * Math.log(u));
      out[i] = r * Math.cos(2 * Math.PI * v);
      if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v);
    }
    return out;
  }

  function addNoise(x, eps, sigma) {  // x_tilde = clip(x + sigma * eps, 0, 1)
    return x.map(function (v, i) { return Math.min(1, Math.max(0, v + sigma * eps[i])); });
  }

  // ----------------------------------------------- a drawing made into an MNIST-like 28 x 28 digit
  // MNIST: the digit's bounding box scaled into 20 x 20 keeping its aspect ratio (grey levels from
  // the averaging), then placed in 28 x 28 so that its centre of mass is at the centre.
  function toMnist(ink, size) {
    var x0 = size, y0 = size, x1 = -1, y1 = -1, i, j;
    for (i = 0; i < size; i++) for (j = 0; j < size; j++) {
      if (ink[i * size + j] > 0.05) { x0 = Math.min(x0, j); x1 = Math.max(x1, j); y0 = Math.min(y0, i); y1 = Math.max(y1, i); }
    }
    var out = new Array(784).fill(0);
    if (x1 < 0) return out;
    var bw = x1 - x0 + 1, bh = y1 - y0 + 1, scale = 20 / Math.max(bw, bh);
    var tw = Math.max(1, Math.round(bw * scale)), th = Math.max(1, Math.round(bh * scale));
    var box = new Float64Array(tw * th), count = new Float64Array(tw * th);
    if (scale <= 1) {  // average every source pixel into the target pixel it falls in
      for (i = y0; i <= y1; i++) for (j = x0; j <= x1; j++) {
        var u = Math.min(tw - 1, Math.floor((j - x0) * scale)), v = Math.min(th - 1, Math.floor((i - y0) * scale));
        box[v * tw + u] += ink[i * size + j];
        count[v * tw + u] += 1;
      }
      for (i = 0; i < box.length; i++) box[i] = count[i] ? box[i] / count[i] : 0;
    } else {  // a tiny drawing: sample it
      for (i = 0; i < th; i++) for (j = 0; j < tw; j++) {
        box[i * tw + j] = ink[Math.min(y1, y0 + Math.floor(i / scale)) * size + Math.min(x1, x0 + Math.floor(j / scale))];
      }
    }
    var mass = 0, cx = 0, cy = 0;
    for (i = 0; i < th; i++) for (j = 0; j < tw; j++) { mass += box[i * tw + j]; cx += j * box[i * tw + j]; cy += i * box[i * tw + j]; }
    cx = mass ? cx / mass : (tw - 1) / 2;
    cy = mass ? cy / mass : (th - 1) / 2;
    var ox = Math.min(28 - tw, Math.max(0, Math.round(13.5 - cx))), oy = Math.min(28 - th, Math.max(0, Math.round(13.5 - cy)));
    for (i = 0; i < th; i++) for (j = 0; j < tw; j++) out[(oy + i) * 28 + ox + j] = Math.min(1, box[i * tw + j]);
    return out;
  }

  var api = {bytesOf: bytesOf, half: half, decodeModels: decodeModels, runLayers: runLayers,
             maxDiff: maxDiff, gaussians: gaussians, addNoise: addNoise, toMnist: toMnist};
  if (typeof module !== "undefined" && module.exports) { module.exports = api; return; }

  // ================================================================ the page (browser only)
  var PAD = 280, COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                            "#7f7f7f", "#bcbd22", "#17becf"];
  var CSS = ".funml-live{border:1px solid #ccc;border-radius:6px;padding:.6em;margin:1em 0;max-width:100%;box-sizing:border-box;overflow:hidden}" +
    ".funml-live *{box-sizing:border-box}.funml-live-controls{display:flex;flex-wrap:wrap;gap:.5em 1em;align-items:center;margin-bottom:.5em}" +
    ".funml-live-controls label{display:inline-flex;align-items:center;gap:.4em}.funml-live-controls input[type=range]{width:8em}" +
    ".funml-live button,.funml-live select{font:inherit;padding:.15em .5em}" +
    ".funml-live-panels,.funml-live-model{display:flex;flex-wrap:wrap;gap:.6em;align-items:flex-start}" +
    ".funml-live-model{margin:.4em 0;padding-top:.4em;border-top:1px solid #ddd}" +
    ".funml-live figure{margin:0;text-align:center;max-width:100%}.funml-live figcaption{font-size:.85em;max-width:15em;margin:auto}" +
    ".funml-live-pad{width:210px;max-width:100%;height:auto;aspect-ratio:1;background:#000;touch-action:none;cursor:crosshair;border:1px solid #888}" +
    ".funml-live-out{width:112px;height:112px;image-rendering:pixelated;border:1px solid #888;background:#000}" +
    ".funml-live-plane{width:300px;max-width:100%;height:auto;aspect-ratio:1;touch-action:none;cursor:move;border:1px solid #888;background:#fff}" +
    ".funml-live-plane+figcaption{max-width:300px}.funml-live-plane:focus,.funml-live-pad:focus{outline:3px solid #0b57d0}" +
    ".funml-live-code{width:256px;max-width:100%;height:64px;border:1px solid #888;background:#fff}" +
    ".funml-live-legend{display:block}.funml-live-key{display:inline-flex;align-items:center;gap:2px;margin:0 3px}" +
    ".funml-live-swatch{display:inline-block;width:.75em;height:.75em;border-radius:2px}" +
    COLORS.map(function (c, i) { return ".funml-live-c" + i + "{background:" + c + "}"; }).join("") +
    ".funml-live-summary{font-size:.9em;margin:.4em 0}.funml-live-note{font-size:.85em;margin:.4em 0 0}";

  function paint(canvas, pixels) {  // 28 x 28 values in [0, 1] onto a 28 x 28 canvas
    var ctx = canvas.getContext("2d"), img = ctx.createImageData(28, 28);
    for (var p = 0; p < 784; p++) {
      var g = Math.round(255 * Math.min(1, Math.max(0, pixels[p])));
      img.data[4 * p] = img.data[4 * p + 1] = img.data[4 * p + 2] = g;
      img.data[4 * p + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }

  function top(values, k) {  // indices of the k largest values, largest first
    return Array.from(values.keys()).sort(function (a, b) { return values[b] - values[a]; }).slice(0, k);
  }

  function fmt(v) { return (Math.round(v * 100) / 100).toFixed(2); }

  function setup(root) {
    root.setAttribute("data-funml-ready", "starting");
    var dataEl = root.querySelector("script.funml-live-data");
    var codeEl = dataEl.nextElementSibling;
    var enc = typeof TextEncoder === "function" ? new TextEncoder() : null;
    var size = function (t) { return enc ? enc.encode(t).length : t.length; };
    var data = JSON.parse(dataEl.textContent);
    var view = {root: root, kind: data.kind, reference: data.reference, tolerance: data.tolerance,
                quantization: data.quantization, lastUpdateMs: null,
                bytes: size(dataEl.textContent) + size(codeEl ? codeEl.textContent : "")};
    window.funmlLive = window.funmlLive || [];
    window.funmlLive.push(view);
    view.ready = new Promise(function (resolve, reject) {
      try { start(root, data, view); resolve(view); } catch (err) {
        root.querySelector(".funml-live-summary").textContent = "The live view failed to start: " + err.message;
        reject(err);
      }
    });
  }

  function start(root, data, view) {
    var models = decodeModels(data), q = function (s) { return root.querySelector(s); };
    view.run = function (name, input) {
      if (!models[name]) throw new Error("no model " + name + "; models: " + Object.keys(models).join(", "));
      return runLayers(models[name], input);
    };
    var ui = q(".funml-live-ui"), padEl = q(".funml-live-pad"), picker = q(".funml-live-digits");
    var summary = q(".funml-live-summary"), outs = {}, shown = {};
    root.querySelectorAll(".funml-live-out").forEach(function (c) { outs[c.getAttribute("data-funml-output")] = c; });
    q(".funml-live-fallback").hidden = true;
    ui.hidden = false;
    var digitBytes = bytesOf(data.digits.data), digits = [];
    for (var d = 0; d < data.digits.n; d++) digits.push(Array.from(digitBytes.slice(784 * d, 784 * d + 784), function (v) { return v / 255; }));
    var pctx = padEl.getContext("2d", {willReadFrequently: true}), input = digits[0].slice(), source = "test digit 1";

    function show(name, pixels, words) {  // an output canvas, its text alternative, and state()
      shown[name] = Array.from(pixels);
      if (outs[name]) {
        paint(outs[name], pixels);
        if (words) outs[name].setAttribute("aria-label", words);
      }
    }

    // ---- the pad: white ink on black, a thick soft round pen
    function padFromDigit(pixels) {
      var small = document.createElement("canvas");
      small.width = small.height = 28;
      paint(small, pixels);
      pctx.imageSmoothingEnabled = false;
      pctx.drawImage(small, 0, 0, PAD, PAD);
    }
    function clearPad() { pctx.fillStyle = "#000"; pctx.fillRect(0, 0, PAD, PAD); }
    function padInk() {
      var img = pctx.getImageData(0, 0, PAD, PAD).data, ink = new Float64Array(PAD * PAD);
      for (var p = 0; p < ink.length; p++) ink[p] = img[4 * p] / 255;
      return ink;
    }
    var drawing = false, last = null, pending = false, testOnPad = true;  // a test digit, not ink
    function at(ev) {
      var r = padEl.getBoundingClientRect();
      return [(ev.clientX - r.left) * PAD / r.width, (ev.clientY - r.top) * PAD / r.height];
    }
    function stroke(p) {
      pctx.strokeStyle = "#fff";
      pctx.lineCap = pctx.lineJoin = "round";
      pctx.lineWidth = 20;
      pctx.shadowColor = "#fff";
      pctx.shadowBlur = 6;
      pctx.beginPath();
      pctx.moveTo(last[0], last[1]);
      pctx.lineTo(p[0] + 0.01, p[1]);
      pctx.stroke();
      pctx.shadowBlur = 0;
      last = p;
    }
    function fromPad() {  // the time measured includes reading the pad and making the digit
      var t0 = performance.now();
      pending = false;
      input = toMnist(padInk(), PAD);
      source = "your drawing";
      update(t0);
    }
    padEl.addEventListener("pointerdown", function (ev) {
      ev.preventDefault();
      if (testOnPad) { clearPad(); testOnPad = false; }  // draw a digit, not over the test digit
      drawing = true;
      last = at(ev);
      if (padEl.setPointerCapture) try { padEl.setPointerCapture(ev.pointerId); } catch (e) { /* synthetic */ }
      stroke(last);
    });
    padEl.addEventListener("pointermove", function (ev) {
      if (!drawing) return;
      stroke(at(ev));
      if (!pending) { pending = true; requestAnimationFrame(fromPad); }  // at most one update a frame
    });
    ["pointerup", "pointercancel"].forEach(function (t) {
      padEl.addEventListener(t, function () { if (drawing) { drawing = false; fromPad(); } });
    });
    function pick() {
      var i = Number(picker.value);
      input = digits[i].slice();
      source = "test digit " + (i + 1) + (data.digits.labels ? " (a " + data.digits.labels[i] + ")" : "");
      clearPad();
      padFromDigit(input);
      testOnPad = true;
      update();
    }
    picker.addEventListener("change", pick);
    picker.addEventListener("input", pick);
    q(".funml-live-clear").addEventListener("click", function () {
      clearPad();
      testOnPad = false;
      input = new Array(784).fill(0);
      source = "an empty pad";
      update();
    });

    var update = {denoiser: denoiserView, sparse: sparseView, latent: latentView}[data.kind](root, data, view, show, function () { return input; });
    var inner = update;
    update = function (since) {
      var t0 = typeof since === "number" ? since : performance.now();
      show("input", input, "the 28 × 28 input: " + source);
      summary.textContent = inner(source);
      view.lastUpdateMs = performance.now() - t0;
    };
    root.addEventListener("funml-update", function () { update(); });
    view.state = function () { return JSON.parse(JSON.stringify(shown)); };
    clearPad();
    padFromDigit(input);
    update();
    root.setAttribute("data-funml-ready", "yes");
  }

  // ---- chapter 3: noise slider, noisy input, each denoiser's output
  function denoiserView(root, data, view, show, getInput) {
    var slider = root.querySelector(".funml-live-noise"), readout = root.querySelector(".funml-live-noise-value");
    var seed = data.seed, eps = gaussians(seed, 784), names = Object.keys(data.models);
    var again = function () { root.dispatchEvent(new Event("funml-update")); };
    slider.addEventListener("input", function () { readout.textContent = Number(slider.value).toFixed(2); again(); });
    root.querySelector(".funml-live-reseed").addEventListener("click", function () { seed += 1; eps = gaussians(seed, 784); again(); });
    function mse(a, x) {  // per pixel, against the digit before noise (outputs clipped as shown)
      return a.reduce(function (s, v, i) { return s + Math.pow(Math.min(1, Math.max(0, v)) - x[i], 2); }, 0) / 784;
    }
    return function (source) {
      var x = getInput(), sigma = Number(slider.value), noisy = addNoise(x, eps, sigma), said = [];
      show("noisy", noisy, "the noisy input, noise sigma " + sigma.toFixed(2));
      names.forEach(function (n) {
        var out = view.run(n, noisy), err = mse(out, x).toFixed(4);
        show(n, out, n + " denoiser's output; squared error " + err + " per pixel against the digit before noise");
        said.push(n + " " + err);
      });
      return "Input: " + source + ", noise sigma " + sigma.toFixed(2) + ". Squared error per pixel against the " +
        "digit before noise: noisy input " + mse(noisy, x).toFixed(4) + ", " + said.join(", ") + ".";
    };
  }

  // ---- chapter 2: code bars and the digit from the top k units (chapter 2's build_up)
  function sparseView(root, data, view, show, getInput) {
    var slider = root.querySelector(".funml-live-k"), readout = root.querySelector(".funml-live-k-value");
    var bars = root.querySelectorAll(".funml-live-code"), outs = root.querySelectorAll(".funml-live-out");
    var captions = data.pairs.map(function (p) {  // "from the top k units", with k's value
      var c = Array.prototype.find.call(outs, function (e) { return e.getAttribute("data-funml-output") === p.label + " top-k"; });
      return c ? c.parentNode.querySelector("figcaption") : null;
    });
    slider.addEventListener("input", function () {
      readout.textContent = slider.value;
      root.dispatchEvent(new Event("funml-update"));
    });
    return function (source) {
      var k = Number(slider.value), said = [];
      data.pairs.forEach(function (p, m) {
        var z = view.run(p.encoder, getInput()), best = top(z, k), keep = z.map(function () { return 0; });
        best.forEach(function (j) { keep[j] = z[j]; });
        show(p.label + " code", z);
        show(p.label + " top-k", view.run(p.decoder, keep), p.label + ": the digit from its " + k + " most active units");
        show(p.label + " all units", view.run(p.decoder, z), p.label + ": the digit from all " + p.hidden + " units");
        if (captions[m]) captions[m].textContent = "from its top " + k + (k === 1 ? " unit" : " units");
        var c = bars[m], ctx = c.getContext("2d"), w = c.width / z.length, chosen = new Set(best);
        ctx.fillStyle = "#fff";
        ctx.fillRect(0, 0, c.width, c.height);
        z.forEach(function (v, j) {
          ctx.fillStyle = chosen.has(j) ? "#c0392b" : "#555";
          ctx.fillRect(j * w, c.height * (1 - v), Math.max(1, w - 0.5), c.height * v);
        });
        var on = z.filter(function (v) { return v > 0.5; }).length;
        var words = p.label + ": " + on + " of " + z.length + " units above 0.5; strongest " +
          best.slice(0, 3).map(function (j) { return "unit " + j + " (" + fmt(z[j]) + ")"; }).join(", ");
        c.setAttribute("aria-label", "code of " + words + "; red bars: the " + k + " units kept");
        said.push(words);
      });
      return "Input: " + source + ". " + said.join(". ") + ". Rebuilt from the top " + k + " units.";
    };
  }

  // ---- chapter 5: the latent plane, the decoded z, and the drawn digit's (mu, sigma) ellipse
  function latentView(root, data, view, show, getInput) {
    var plane = root.querySelector(".funml-live-plane"), ctx = plane.getContext("2d");
    var R = data.range, S = plane.width, z = [0, 0], mu = null, sigma = null, pts = data.scatter.z;
    var toPx = function (a, b) { return [(a + R) / (2 * R) * S, (R - b) / (2 * R) * S]; };
    function draw() {
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, S, S);
      ctx.strokeStyle = "#bbb";
      ctx.lineWidth = 1;
      var o = toPx(0, 0);
      ctx.beginPath(); ctx.moveTo(0, o[1]); ctx.lineTo(S, o[1]); ctx.moveTo(o[0], 0); ctx.lineTo(o[0], S); ctx.stroke();
      for (var i = 0; i < pts.length; i += 2) {
        var p = toPx(pts[i], pts[i + 1]), lab = data.scatter.labels ? data.scatter.labels[i / 2] : 7;
        ctx.fillStyle = COLORS[lab];
        ctx.globalAlpha = 0.7;
        ctx.fillRect(p[0] - 2, p[1] - 2, 4, 4);
      }
      ctx.globalAlpha = 1;
      var q = toPx(z[0], z[1]);  // z: an open ring, so that what lies under it stays visible
      [[5, "#fff"], [2, "#000"]].forEach(function (s) {
        ctx.beginPath();
        ctx.arc(q[0], q[1], 9, 0, 2 * Math.PI);
        ctx.lineWidth = s[0];
        ctx.strokeStyle = s[1];
        ctx.stroke();
      });
      if (mu) {  // over the point: a clean digit's ellipses can be smaller than it
        var c = toPx(mu[0], mu[1]);
        [2, 1].forEach(function (k) {
          [[4, "#fff"], [2, "#c2185b"]].forEach(function (s) {
            ctx.beginPath();
            ctx.ellipse(c[0], c[1], Math.max(1, k * sigma[0] / (2 * R) * S), Math.max(1, k * sigma[1] / (2 * R) * S), 0, 0, 2 * Math.PI);
            ctx.setLineDash(k === 2 && s[1] !== "#fff" ? [4, 3] : []);
            ctx.lineWidth = s[0];
            ctx.strokeStyle = s[1];
            ctx.stroke();
          });
        });
        ctx.setLineDash([]);
      }
    }
    var current = "";
    function decode() {
      var t0 = performance.now();
      show("decoded", view.run("decoder", z), "the digit G_phi(z) decoded from z = (" + fmt(z[0]) + ", " + fmt(z[1]) + ")");
      show("z", z);
      draw();
      root.querySelector(".funml-live-summary").textContent = "Decoded z = (" + fmt(z[0]) + ", " + fmt(z[1]) + "). " + current;
      view.lastUpdateMs = performance.now() - t0;
    }
    function move(a, b) {
      z = [Math.max(-R, Math.min(R, a)), Math.max(-R, Math.min(R, b))];
      decode();
    }
    var dragging = false;
    function fromEvent(ev) {
      var r = plane.getBoundingClientRect();
      move(((ev.clientX - r.left) / r.width * 2 - 1) * R, (1 - (ev.clientY - r.top) / r.height * 2) * R);
    }
    plane.addEventListener("pointerdown", function (ev) {
      ev.preventDefault();
      plane.focus();
      dragging = true;
      if (plane.setPointerCapture) try { plane.setPointerCapture(ev.pointerId); } catch (e) { /* synthetic */ }
      fromEvent(ev);
    });
    plane.addEventListener("pointermove", function (ev) { if (dragging) fromEvent(ev); });
    ["pointerup", "pointercancel"].forEach(function (t) { plane.addEventListener(t, function () { dragging = false; }); });
    plane.addEventListener("keydown", function (ev) {
      var step = ev.shiftKey ? 0.5 : 0.1, d = {ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, step], ArrowDown: [0, -step]}[ev.key];
      if (!d) return;
      ev.preventDefault();
      move(z[0] + d[0], z[1] + d[1]);
    });
    return function (source) {
      var out = view.run("encoder", getInput());
      mu = out.slice(0, 2);
      sigma = out.slice(2, 4).map(function (lv) { return Math.exp(lv / 2); });
      show("mu", mu);
      show("sigma", sigma);
      var outside = Math.abs(mu[0]) > R || Math.abs(mu[1]) > R;
      current = "Input: " + source + "; its q_\u03b8(z|x) has \u03bc = (" + fmt(mu[0]) + ", " + fmt(mu[1]) + "), \u03c3 = (" +
        fmt(sigma[0]) + ", " + fmt(sigma[1]) + ")" + (outside ? ", outside the plane shown (\u00b1" + R + "): its ellipses " +
        "are off the edge." : ": the pink ellipses on the plane (1 \u03c3 solid, 2 \u03c3 dashed).");
      z = mu.slice();
      decode();
      return "Decoded z = (" + fmt(z[0]) + ", " + fmt(z[1]) + "). " + current;
    };
  }

  if (!document.getElementById("funml-live-style")) {
    var style = document.createElement("style");
    style.id = "funml-live-style";
    style.textContent = CSS;
    document.head.appendChild(style);
  }
  // JupyterLab runs an output's scripts before it attaches the output to the document: start the
  // view this script belongs to through currentScript, then any other view not started yet
  var me = document.currentScript, mine = me && me.closest ? me.closest("div.funml-live") : null;
  if (mine && !mine.hasAttribute("data-funml-ready")) setup(mine);
  function scan() { document.querySelectorAll("div.funml-live:not([data-funml-ready])").forEach(setup); }
  scan();
  // the classic Notebook runs the scripts (through jQuery, without currentScript) while the output
  // is still detached: look again once it is on the page
  setTimeout(scan, 0);
  setTimeout(scan, 1000);
})();
