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

// An export kept for one download (the result of "Export All Configuration"): fetched at
// once, and the link then says so (it cannot be used twice).
document.addEventListener("DOMContentLoaded", function () {
  var a = document.querySelector("a[data-auto-download]");
  if (!a) {
    return;
  }
  a.click();
  a.removeAttribute("href");
  a.setAttribute("aria-disabled", "true");
  a.textContent = "Downloaded " + a.getAttribute("download");
});
