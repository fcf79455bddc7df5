/* Evaluated by coursekit/site_checks.py at each viewport width: math, code, figures and widgets that
   are wider than the room they have and not inside a scroll box of their own (overflow-x auto or
   scroll) are cut off or push the page sideways. Also lists code blocks that scroll sideways. */
() => {
  const article = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
  const room = article.getBoundingClientRect();
  const scrolls = el => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
  const scrollBox = el => { for (let n = el; n && n !== article; n = n.parentElement) if (scrolls(n)) return n; return null; };
  const describe = el => (el.tagName.toLowerCase() + (el.className && typeof el.className === 'string' ?
      '.' + el.className.trim().split(/\s+/).slice(0, 2).join('.') : '') + ': ' +
      (el.textContent || el.getAttribute('alt') || el.getAttribute('src') || '').trim().replace(/\s+/g, ' ').slice(0, 60));
  const out = {overflow: [], codeScroll: []};
  const selector = 'div.math, mjx-container[display="true"], pre, div.highlight, ' +
                   'div.cell_output img, figure, table, .jupyter-widgets img, .funml-explorer';
  for (const el of document.querySelectorAll(selector)) {
    if (!article.contains(el) || el.closest('nav, header, footer, .bd-sidebar-primary, .bd-sidebar-secondary')) continue;
    const r = el.getBoundingClientRect();
    if (!r.width && !r.height) continue;   // hidden (a closed dropdown, a frame not shown)
    const inner = Math.max(el.scrollWidth, r.width, ...[...el.children].map(c => c.getBoundingClientRect().width));
    const left = Math.max(r.left, room.left);
    const available = room.right - left;
    const box = scrollBox(el);
    if (box) {
      const b = box.getBoundingClientRect();
      if (b.right > room.right + 2) out.overflow.push(`${describe(el)} (its scroll box is ${Math.round(b.width)} px ` +
                                                     `wide, wider than the ${Math.round(room.width)} px column)`);
      continue;
    }
    if (inner > available + 2 || r.right > room.right + 2) {
      out.overflow.push(`${describe(el)} (${Math.round(inner)} px wide, ${Math.round(available)} px of room, no scroll box)`);
    }
  }
  for (const pre of document.querySelectorAll('div.cell_input pre, div.highlight pre')) {
    if (pre.getBoundingClientRect().width && pre.scrollWidth > pre.clientWidth + 2) {
      out.codeScroll.push(describe(pre));
    }
  }
  out.overflow = [...new Set(out.overflow)];
  return out;
}
