// Segment builder behaviour (no inline scripts: the CSP forbids them).
(function () {
  "use strict";

  // Enter in a builder input refreshes the live count instead of saving the segment half-typed.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter") return;
    var input = event.target.closest("#builder input");
    if (!input || !input.form || !input.form.hasAttribute("data-segment-builder")) return;
    event.preventDefault();
    input.dispatchEvent(new Event("change", { bubbles: true }));
  });
})();
