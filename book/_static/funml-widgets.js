/* Runs on pages with ipywidgets, between require.js and the widget manager (embed-amd.js): the
   order is set by nb_ipywidgets_js in _config.yml. Both fixes keep the page free of network
   requests and console errors; coursekit/check_site.py checks that. */
(function () {
  "use strict";
  // 1. The manager loads its icon fonts relative to its AMD module's URL, which require.js would
  //    otherwise resolve against the page's folder (404s). Point the module at the vendored copy.
  var base = new URL("vendor/html-manager/", document.currentScript.src).href;
  window.__jupyter_widgets_assets_path__ = base;
  if (window.require && window.require.config) {
    // The bundled AMD modules (@jupyter-widgets/base, /controls, ...) take their asset folder from
    // their module URL too: map the whole scope to the vendored folder.
    window.require.config({ paths: { "@jupyter-widgets/html-manager/dist": base.replace(/\/$/, ""),
                                     "@jupyter-widgets": base.replace(/\/$/, "") } });
  }

  // 2. ipywidgets typesets widget labels with the MathJax 2 API (MathJax.Hub.Queue) whenever a
  //    window.MathJax exists; the book uses MathJax 3, which has no Hub and (as Sphinx configures
  //    it) no $...$ delimiters. Give every object that becomes window.MathJax (Sphinx's config,
  //    then MathJax itself) a small Hub: it rewrites the label's $...$ as \(...\) and typesets it
  //    with MathJax 3 once MathJax is ready.
  function dollarsToDelimiters(element) {
    var text = element && element.textContent;
    if (!text || text.indexOf("$") < 0) return;
    element.textContent = text
      .replace(/\$\$([^$]+)\$\$/g, "\\[$1\\]")
      .replace(/\$([^$]+)\$/g, "\\($1\\)");
  }
  var hub = {
    Queue: function () {
      for (var i = 0; i < arguments.length; i++) {
        var cmd = arguments[i];
        if (!Array.isArray(cmd) || cmd[0] !== "Typeset") continue;
        var element = cmd[2];
        dollarsToDelimiters(element);
        var mj = window.MathJax;
        if (mj && mj.startup && mj.startup.promise && mj.typesetPromise) {
          mj.startup.promise
            .then(function () { return window.MathJax.typesetPromise(element ? [element] : undefined); })
            .catch(function (err) { console.warn("MathJax could not typeset a widget label", err); });
        } // before MathJax starts, its first pass over the page typesets the label anyway
      }
    },
  };
  var current = window.MathJax;
  function withHub(value) {
    if (value && typeof value === "object" && !value.Hub) {
      try { Object.defineProperty(value, "Hub", { value: hub, enumerable: false, configurable: true }); }
      catch (err) { /* a frozen object: leave it */ }
    }
    return value;
  }
  withHub(current);
  Object.defineProperty(window, "MathJax", {
    configurable: true,
    get: function () { return current; },
    set: function (value) { current = withHub(value); },
  });

  // 3. Explorers (funml_lib.frames): the frame shown gets an alt text (the explorer's caption and
  //    the sliders' current values) and every slider handle an accessible name (its label), for
  //    screen readers; the DOM changes each time a slider selects another frame.
  function describe(explorer) {
    var values = [].map.call(explorer.querySelectorAll(".widget-slider"), function (slider) {
      var label = slider.querySelector(".widget-label");
      var readout = slider.querySelector(".widget-readout");
      var handle = slider.querySelector(".noUi-handle");
      var name = label ? label.textContent.replace(/\$/g, "").trim() : "";
      if (handle && name && !handle.getAttribute("aria-label")) handle.setAttribute("aria-label", name);
      return name + " = " + (readout ? readout.textContent.trim() : "");
    });
    var caption = explorer.querySelector(".funml-explorer-caption");
    var text = (caption ? caption.textContent.trim() : "Explorer frame") + " (" + values.join(", ") + ")";
    [].forEach.call(explorer.querySelectorAll("img"), function (img) {
      if (img.getAttribute("alt") !== text) img.setAttribute("alt", text);
    });
  }
  var pending = false;
  function describeAll() {
    pending = false;
    [].forEach.call(document.querySelectorAll(".funml-explorer"), describe);
  }
  new MutationObserver(function () {
    if (!pending) { pending = true; window.requestAnimationFrame(describeAll); }
  }).observe(document.documentElement, { childList: true, subtree: true, characterData: true });
})();
