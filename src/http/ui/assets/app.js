// mcp-gitops web UI: small progressive enhancements. Every read-only page works without it.
"use strict";

// Buttons with data-confirm ask before their form is sent.
document.addEventListener("submit", function (e) {
  var b = e.submitter;
  var msg = (b && b.getAttribute("data-confirm")) || e.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) {
    e.preventDefault();
  }
});
