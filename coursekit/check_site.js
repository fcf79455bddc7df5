/* Evaluated in each page by coursekit/check_site.py (Playwright's page.evaluate): waits for MathJax,
   the widget manager and the images, then returns what a reader sees. */
async () => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const out = {mathjax: null, mathjaxError: null};
  const mathNodes = document.querySelectorAll('span.math, div.math');
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    try { await Promise.race([MathJax.startup.promise, sleep(20000).then(() => { throw 'timeout after 20 s'; })]);
          out.mathjax = MathJax.version || true; }
    catch (e) { out.mathjaxError = String(e); }
  }
  out.mathElements = mathNodes.length;
  out.untypeset = [...mathNodes].filter(n => !n.querySelector('mjx-container'))
                      .slice(0, 3).map(n => n.textContent.trim().slice(0, 80));
  out.formulas = document.querySelectorAll('mjx-container').length;
  out.mathjaxErrors = [...document.querySelectorAll('mjx-merror, [data-mjx-error]')]
                          .slice(0, 3).map(n => n.getAttribute('data-mjx-error') || n.textContent);

  // Widgets: give the manager up to 15 s to replace each saved view with rendered controls.
  out.widgetViews = document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length;
  out.widgetState = !!document.querySelector('script[type="application/vnd.jupyter.widget-state+json"]');
  if (out.widgetViews) {
    for (let t = 0; t < 150 && document.querySelectorAll('.jupyter-widgets').length === 0; t++) await sleep(100);
  }
  out.widgetsRendered = [...document.querySelectorAll(
      'script[type="application/vnd.jupyter.widget-view+json"]')].filter(s =>
      s.parentElement && s.parentElement.querySelector('.jupyter-widgets, .widget-subarea')).length;

  // Text a reader sees (outside code, scripts and typeset math; after the widgets rendered and their
  // labels were typeset) that still looks like TeX.
  if (out.widgetViews) await sleep(1000);  // labels are typeset after the widgets render
  const skip = 'pre, code, kbd, samp, script, style, textarea, noscript, mjx-container, .highlight';
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const texts = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (n.parentElement && !n.parentElement.closest(skip)) texts.push(n.textContent);
  }
  out.text = texts.join(' ');

  const imgs = [...document.images];
  imgs.forEach(i => { if (i.loading === 'lazy') i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => {
    i.addEventListener('load', r); i.addEventListener('error', r); setTimeout(r, 10000); })));
  out.images = imgs.map(i => ({src: i.getAttribute('src'), width: i.naturalWidth,
                               alt: i.getAttribute('alt'), role: i.getAttribute('role'),
                               widget: !!i.closest('.jupyter-widgets'),
                               output: !!i.closest('div.cell_output') && !i.closest('.jupyter-widgets')}));
  out.links = [...document.querySelectorAll('a[href]')].map(a => a.href);
  const h1 = document.querySelector('article.bd-article h1') || document.querySelector('main h1');
  const num = h1 && h1.querySelector('.section-number');
  out.sectionNumber = num ? num.textContent.trim() : null;
  out.title = document.title;
  out.favicon = !!document.querySelector('link[rel~="icon"]');
  return out;
}
