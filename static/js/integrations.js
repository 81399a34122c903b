// Integrations page: show only the credential fields of the chosen platform in the "Connect a store" form.
(function () {
  "use strict";
  function sync(form) {
    var select = form.querySelector("[data-platform-select]");
    if (!select) return;
    form.querySelectorAll("[data-platform-only]").forEach(function (block) {
      block.hidden = block.dataset.platformOnly !== select.value;
    });
  }
  document.addEventListener("change", function (event) {
    var form = event.target.closest("[data-platform-form]");
    if (form && event.target.matches("[data-platform-select]")) sync(form);
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-platform-form]").forEach(sync);
  });
})();
