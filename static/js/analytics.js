// Analytics pages: KPI definition popovers and the custom date range toggle. Charts are drawn by app.js.
(function () {
  "use strict";

  function initPopovers(root) {
    if (!window.bootstrap) return;
    root.querySelectorAll('[data-bs-toggle="popover"]').forEach(function (el) {
      window.bootstrap.Popover.getOrCreateInstance(el);
    });
  }

  document.addEventListener("change", function (event) {
    var select = event.target.closest("[data-range-period]");
    if (!select) return;
    var form = select.closest("[data-range-form]");
    form.querySelectorAll("[data-range-custom]").forEach(function (el) {
      el.classList.toggle("d-none", select.value !== "custom");
    });
    if (select.value !== "custom") form.requestSubmit();
  });

  // Plotly sizes a figure to its box when drawn; redraw on rotation / resize so phones get a fitting chart.
  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      if (!window.Plotly) return;
      document.querySelectorAll(".chart-box.js-plotly-plot").forEach(function (el) { window.Plotly.Plots.resize(el); });
    }, 200);
  });

  document.addEventListener("DOMContentLoaded", function () { initPopovers(document); });
  document.addEventListener("htmx:afterSettle", function (event) { initPopovers(event.target); });
})();
