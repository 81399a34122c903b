// Support inbox behaviour (no inline scripts: the CSP forbids them).
(function () {
  "use strict";

  // A click anywhere on a ticket row opens it in the pane, except on its checkbox.
  document.addEventListener("click", function (event) {
    var row = event.target.closest(".ticket-row");
    if (!row || event.target.closest("input, a, button, label")) return;
    var link = row.querySelector("a[data-open-ticket]");
    if (link) link.click();
  });

  // Highlight the open ticket's row.
  document.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-open-ticket]");
    if (!link) return;
    document.querySelectorAll(".ticket-row.active").forEach(function (row) { row.classList.remove("active"); });
    var row = link.closest(".ticket-row");
    if (row) row.classList.add("active");
  });

  // On narrow screens the pane sits below the list: bring a freshly opened ticket into view.
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (target && target.id === "ticket-pane" && window.innerWidth < 1200 &&
        event.detail.requestConfig && event.detail.requestConfig.verb === "get") {
      target.scrollIntoView({ block: "start" });
    }
  });

  // After a reply or note is sent the pane is re-rendered; keep the conversation's end in view.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "ticket-pane") {
      var form = event.detail.target.querySelector("#reply-form");
      if (form && event.detail.requestConfig && event.detail.requestConfig.verb === "post") {
        form.scrollIntoView({ block: "nearest" });
      }
    }
  });

  // Ctrl/Cmd+Enter in the reply box sends the reply.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
    var box = event.target.closest("#reply-body");
    if (!box) return;
    var send = box.form && box.form.querySelector('[data-testid="send-reply"]');
    if (send) { event.preventDefault(); send.click(); }
  });
})();
