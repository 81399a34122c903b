// Project JavaScript. No inline scripts anywhere (the Content-Security-Policy forbids them), so behaviour that
// pages need is attached here by data attributes.
(function () {
  "use strict";

  // Plotly figures are sent as JSON in <script type="application/json" data-plotly> and drawn here.
  function drawCharts(root) {
    if (!window.Plotly) return;
    root.querySelectorAll("script[data-plotly]").forEach(function (node) {
      if (node.dataset.drawn) return;
      node.dataset.drawn = "1";
      var target = document.getElementById(node.dataset.plotly);
      if (!target) return;
      var figure = JSON.parse(node.textContent);
      var config = Object.assign({ responsive: true, displaylogo: false }, figure.config || {});
      window.Plotly.newPlot(target, figure.data, figure.layout || {}, config);
    });
  }

  // <button data-confirm="Really?"> asks before submitting its form or firing its htmx request.
  document.addEventListener("click", function (event) {
    var el = event.target.closest("[data-confirm]");
    if (el && !window.confirm(el.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // <input data-select-all="name"> toggles every checkbox with that name (bulk actions on tables).
  document.addEventListener("change", function (event) {
    var el = event.target.closest("[data-select-all]");
    if (!el) return;
    document.querySelectorAll('input[type=checkbox][name="' + el.dataset.selectAll + '"]').forEach(function (box) {
      box.checked = el.checked;
    });
  });

  // <button data-copy="#id"> copies the text of #id to the clipboard.
  document.addEventListener("click", function (event) {
    var el = event.target.closest("[data-copy]");
    if (!el) return;
    var source = document.querySelector(el.dataset.copy);
    if (source && navigator.clipboard) {
      navigator.clipboard.writeText(source.value || source.textContent);
      el.textContent = "Copied";
    }
  });

  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
  document.addEventListener("htmx:afterSettle", function (event) { drawCharts(event.target); });
  window.crmDrawCharts = drawCharts;
})();
