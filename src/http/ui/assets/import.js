// mcp-gitops import wizard: a drop zone that fills the upload form's file input, and a
// progress bar fed by the import job's event stream. The wizard works without it.
"use strict";

(function () {
  var zone = document.getElementById("dropzone");
  var input = document.getElementById("file");
  var said = document.getElementById("dropped");
  if (zone && input) {
    var show = function () {
      if (said && input.files && input.files.length) {
        said.textContent = "Chosen: " + input.files[0].name;
      }
    };
    input.addEventListener("change", show);
    ["dragenter", "dragover"].forEach(function (t) {
      zone.addEventListener(t, function (e) {
        e.preventDefault();
        zone.classList.add("over");
      });
    });
    ["dragleave", "drop"].forEach(function (t) {
      zone.addEventListener(t, function () {
        zone.classList.remove("over");
      });
    });
    zone.addEventListener("drop", function (e) {
      e.preventDefault();
      if (e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files.length) {
        input.files = e.dataTransfer.files;
        show();
      }
    });
  }

  var bar = document.getElementById("progress");
  var url = bar && bar.getAttribute("data-events");
  if (!url || !window.EventSource) {
    return;
  }
  var set = function (id, n) {
    var el = document.getElementById(id);
    if (el) {
      el.textContent = String(n);
    }
  };
  var update = function (d) {
    var c = d.counts || {};
    bar.max = Math.max(c.total || 0, 1);
    bar.value = c.processed || 0;
    ["total", "processed", "created", "updated", "skipped", "failed"].forEach(function (k) {
      set("count-" + k, c[k] || 0);
    });
    set("job-state", d.state || "");
  };
  var source = new EventSource(url);
  source.addEventListener("progress", function (e) {
    update(JSON.parse(e.data));
  });
  source.addEventListener("done", function (e) {
    source.close();
    update(JSON.parse(e.data));
    window.location.reload();
  });
})();
