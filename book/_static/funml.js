/* FunML book: every page (listed in html_js_files in _config.yml).
   A box that scrolls sideways (a long formula, a wide output) must be reachable with the keyboard,
   or keyboard users cannot see its hidden part (axe-core: scrollable-region-focusable, checked by
   coursekit/check_site.py). Make each such box focusable, also once MathJax has typeset the page,
   widgets have rendered, or the window was resized. */
(function () {
  "use strict";
  var SELECTOR = "div.math, mjx-container, div.cell_output, div.output, pre, .widget-box, .jupyter-widgets";
  function scrolls(el) {
    if (el.scrollWidth <= el.clientWidth + 1 && el.scrollHeight <= el.clientHeight + 1) return false;
    var style = window.getComputedStyle(el);
    return /(auto|scroll)/.test(style.overflowX + " " + style.overflowY);
  }
  function label(el) {
    if (el.hasAttribute("tabindex")) return;
    el.setAttribute("tabindex", "0");
    if (!el.getAttribute("aria-label") && !el.getAttribute("role")) {
      var what = el.matches("div.math, mjx-container") ? "formula" : el.matches("pre") ? "code or output" : "content";
      el.setAttribute("role", "region");
      el.setAttribute("aria-label", "scrollable " + what);
    }
  }
  var pending = false;
  function update() {
    pending = false;
    [].forEach.call(document.querySelectorAll(SELECTOR), function (el) { if (scrolls(el)) label(el); });
  }
  function later() { if (!pending) { pending = true; window.setTimeout(update, 200); } }
  window.addEventListener("load", later);
  window.addEventListener("resize", later);
  new MutationObserver(later).observe(document.documentElement, { childList: true, subtree: true });
})();
