// Email editor helpers (no inline scripts: attached by data attributes).
(function () {
  "use strict";
  var lastTarget = null;

  document.addEventListener("focusin", function (event) {
    var el = event.target;
    if (el.matches && el.matches("textarea, input[type=text], input:not([type])") && el.closest("[data-email-editor]")) {
      lastTarget = el;
    }
  });

  // Clicking a merge-field chip inserts {{ name }} where the cursor was.
  document.addEventListener("click", function (event) {
    var chip = event.target.closest("[data-merge-field]");
    if (!chip) return;
    var target = lastTarget || document.querySelector("[data-merge-target]");
    if (!target) return;
    var tag = "{{ " + chip.dataset.mergeField + " }}";
    var start = target.selectionStart || target.value.length;
    var end = target.selectionEnd || start;
    target.value = target.value.slice(0, start) + tag + target.value.slice(end);
    target.focus();
    target.selectionStart = target.selectionEnd = start + tag.length;
    target.dispatchEvent(new Event("input", { bubbles: true }));
  });

  // Show only the body editor of the chosen format (blocks or HTML).
  function syncFormat(form) {
    var checked = form.querySelector("input[name=format]:checked");
    var format = checked ? checked.value : "blocks";
    form.querySelectorAll("[data-format-section]").forEach(function (section) {
      section.hidden = section.dataset.formatSection !== format;
    });
  }
  document.addEventListener("change", function (event) {
    var form = event.target.closest("[data-email-editor]");
    if (form && event.target.name === "format") syncFormat(form);
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-email-editor]").forEach(syncFormat);
  });
})();
