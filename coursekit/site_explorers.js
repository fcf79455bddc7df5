/* Evaluated by coursekit/site_checks.py: the explorers (funml_lib.frames) on a page and the frame
   each one shows. The expected frame comes from the saved widget state alone: slider k at position
   i selects child i of the Stacks at depth k (never from the links, so a missing link is caught). */
async (k) => {
  const tag = document.querySelector('script[type="application/vnd.jupyter.widget-state+json"]');
  const state = tag ? JSON.parse(tag.textContent).state : {};
  const ref = s => String(s).replace(/^IPY_MODEL_/, '');
  const found = [];
  for (const v of document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')) {
    const model = state[JSON.parse(v.textContent).model_id];
    if (!model || !(model.state._dom_classes || []).includes('funml-explorer')) continue;
    const [controls, stack] = model.state.children.map(ref);
    const el = v.parentElement && v.parentElement.querySelector('.funml-explorer');
    const n = found.length;
    if (el) el.dataset.funmlExplorer = String(n);
    found.push({el, stack, sliders: state[controls].state.children.map(ref).map(id => ({
      labels: state[id].state._options_labels, description: state[id].state.description}))});
  }
  if (k === null || k === undefined) {
    return found.map(e => ({rendered: !!e.el, sliders: e.sliders}));
  }
  const e = found[k];
  const handles = [...e.el.querySelectorAll('.noUi-handle')];
  const positions = handles.map(h => Math.round(parseFloat(h.getAttribute('aria-valuenow'))));
  const readouts = [...e.el.querySelectorAll('.widget-readout')].map(r => r.textContent.trim());
  let node = e.stack;
  for (const i of positions) node = ref(((state[node] || {}).state || {children: []}).children[i]);
  const buffer = ((state[node] || {}).buffers || []).find(b => b.path.join('.') === 'value');
  const imgs = [...e.el.querySelectorAll('img')].filter(i => i.getBoundingClientRect().width > 0);
  let shown = null;
  if (imgs.length === 1) {
    const bytes = new Uint8Array(await (await fetch(imgs[0].src)).arrayBuffer());
    let binary = '';
    for (let i = 0; i < bytes.length; i += 8192) binary += String.fromCharCode(...bytes.subarray(i, i + 8192));
    shown = btoa(binary);
  }
  return {positions, readouts, images: imgs.length, shown, expected: buffer ? buffer.data : null,
          alt: imgs.length ? imgs[0].getAttribute('alt') : null};
}
