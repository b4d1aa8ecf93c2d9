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

  // A streaming answer needs nothing here when its connection is made again
  // (the browser's own retry with Last-Event-ID, or a new EventSource from
  // htmx): the server's first `delta` on every connection replaces all the
  // text shown, so nothing is doubled or lost.
})();
