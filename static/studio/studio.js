// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";

  // Copy the raw answer text.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-from]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy-from"));
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.value).then(function () {
      var label = button.textContent;
      button.textContent = button.getAttribute("data-copied-label") || label;
      button.setAttribute("data-copied", "");
      window.setTimeout(function () {
        button.textContent = label;
        button.removeAttribute("data-copied");
      }, 1500);
    });
  });

  // Switch language as soon as one is picked.
  document.addEventListener("change", function (event) {
    if (event.target.matches("select[data-autosubmit]")) event.target.form.submit();
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-autosubmit-button]").forEach(function (button) {
      button.hidden = true;
    });
  });

  // The browser's own reconnect resumes with Last-Event-ID and must keep the
  // text. But when htmx opens a brand-new EventSource (after a fatal error),
  // the server replays from the start: clear what was shown to avoid doubling.
  document.addEventListener("htmx:sseOpen", function (event) {
    var element = event.detail.elt || event.target;
    var source = event.detail.source;
    if (element.studioSource && element.studioSource !== source) {
      element.querySelectorAll("[data-stream-text]").forEach(function (node) {
        node.textContent = "";
      });
    }
    element.studioSource = source;
  });
})();
