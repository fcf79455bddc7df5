/* Evaluated by coursekit/site_checks.py (check_live) and benchmarks/live_latency.py: the live views
   of a page (funml_lib/live.js pushes one object per view onto window.funmlLive; the contract is
   described in site_checks.check_live). One function, three operations:
     {op: "find", readyMs}  every div.funml-live, whether it registered, its ready, its references
                            run again here, its bytes; numbers each root (data-funml-live-index)
     {op: "state", k}       what view k shows now (state() as JSON) and its lastUpdateMs
     {op: "focus", k, what} focuses view k's digit picker ("digits") or latent plane ("plane")
   Nothing here draws or presses keys: the Python side does that with Playwright's real (trusted)
   pointer and key events, which is what a reader's browser delivers. */
async ({op, k, readyMs, what}) => {
  const views = window.funmlLive || [];
  const json = value => JSON.stringify(value, (key, v) => (ArrayBuffer.isView(v) ? Array.from(v) : v));
  const snapshot = view => {
    try { return json(view.state()); } catch (e) { return 'error: ' + String(e).slice(0, 200); }
  };
  const roots = [...document.querySelectorAll('.funml-live')];
  const viewOf = root => views.find(v => v && v.root === root);

  if (op === 'state') {
    const view = viewOf(roots[k]);
    return {state: snapshot(view), last: Number(view.lastUpdateMs)};
  }
  if (op === 'focus') {
    const box = roots[k].querySelector(what === 'plane' ? '.funml-live-plane' : '.funml-live-digits');
    if (!box) return false;
    // a <select>, an <input> or anything focusable takes the focus itself; a radio group (a div)
    // passes it to its checked radio, as Tab would
    const focusable = 'select, input, button, [tabindex]';
    const target = box.matches(focusable) ? box
      : box.querySelector('input:checked, [aria-checked="true"], ' + focusable);
    if (target) target.focus();
    return !!target && roots[k].contains(document.activeElement) && document.activeElement !== document.body;
  }

  // op "find": the runtime registers its views when its inline script runs; give late ones 2 s
  for (let i = 0; i < 40 && roots.some(r => !viewOf(r)); i++) await new Promise(r => setTimeout(r, 50));
  const encoder = new TextEncoder();
  const scripts = new Set(document.querySelectorAll('script.funml-live-data'));
  for (const root of roots) for (const s of root.querySelectorAll('script:not([src])')) scripts.add(s);
  let domBytes = 0;
  for (const s of scripts) domBytes += encoder.encode(s.textContent).length;

  const found = [];
  for (const [i, root] of roots.entries()) {
    root.dataset.funmlLiveIndex = String(i);
    const view = viewOf(root);
    const out = {kind: root.dataset.funmlKind || '?', registered: !!view,
                 pad: !!root.querySelector('.funml-live-pad'),
                 digits: !!root.querySelector('.funml-live-digits'),
                 plane: !!root.querySelector('.funml-live-plane')};
    found.push(out);
    if (!view) continue;
    out.kind = view.kind || out.kind;
    if (!view.ready || typeof view.ready.then !== 'function') {
      out.ready = 'missing';
    } else {
      let timer;
      const late = new Promise(r => { timer = setTimeout(() => r('timeout'), readyMs); });
      out.ready = await Promise.race([view.ready.then(() => 'ok', e => 'rejected: ' + String(e).slice(0, 200)), late]);
      clearTimeout(timer);
    }
    out.fallbackVisible = [...root.querySelectorAll('.funml-live-fallback')].some(p =>
      p.checkVisibility({checkOpacity: true, checkVisibilityCSS: true}) && p.getBoundingClientRect().height > 0);
    out.bytes = view.bytes;
    out.tolerance = view.tolerance;
    out.lastUpdateMs = Number(view.lastUpdateMs);
    out.quantization = view.quantization && typeof view.quantization === 'object' ? view.quantization : null;
    if (out.ready !== 'ok') continue;
    const before = snapshot(view);
    out.references = (Array.isArray(view.reference) ? view.reference : []).map(ref => {
      const row = {model: String(ref.model), expected: (ref.output || []).length};
      try {
        const got = Array.from(view.run(ref.model, Array.from(ref.input || [])) || []);
        row.length = got.length;
        row.diff = got.length === row.expected
          ? Math.max(0, ...got.map((g, j) => Math.abs(Number(g) - Number(ref.output[j]))))
          : null;
        if (Number.isNaN(row.diff)) row.diff = 'NaN';
      } catch (e) {
        row.error = String(e).slice(0, 200);
      }
      return row;
    });
    out.state = before;
    out.runChangedState = snapshot(view) !== before;
  }
  return {views: found, registered: views.length, domBytes};
}
