// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";

  // Copy the raw answer text.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-from]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy-from"));
    if (!source || !navigator.clipboard) return;
    // A Markdown answer goes on the clipboard formatted too (text/html), so that
    // pasting into Word, Google Docs or Gmail keeps its headings, lists and
    // tables; a plain-text answer (an email) as its text only.
    var box = document.getElementById(button.getAttribute("data-copy-html-from"));
    var formatted = box && box.querySelector(".markdown.answer");
    var copying;
    if (formatted && window.ClipboardItem && navigator.clipboard.write) {
      copying = navigator.clipboard.write([
        new ClipboardItem({
          "text/plain": new Blob([source.value], { type: "text/plain" }),
          "text/html": new Blob([formatted.innerHTML], { type: "text/html" }),
        }),
      ]);
    } else {
      copying = navigator.clipboard.writeText(source.value);
    }
    copying.then(function () {
      var label = button.textContent;
      button.textContent = button.getAttribute("data-copied-label") || label;
      button.setAttribute("data-copied", "");
      window.setTimeout(function () {
        button.textContent = label;
        button.removeAttribute("data-copied");
      }, 1500);
    });
  });

  // Switch language as soon as one is picked, staying on the page as it is
  // now: htmx may have changed the address (filters, sort, page) since the
  // page was drawn.
  document.addEventListener("change", function (event) {
    if (!event.target.matches("select[data-autosubmit]")) return;
    var form = event.target.form;
    var next = form.querySelector("[data-language-next]");
    if (next) next.value = window.location.pathname + window.location.search;
    form.submit();
  });

  // Ctrl+Enter (⌘+Enter on a Mac) generates from anywhere in the form.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
    var form = event.target.closest && event.target.closest("form.generate-form");
    if (!form) return;
    event.preventDefault();
    if (form.requestSubmit) form.requestSubmit();
    else form.submit();
  });

  // Character counters under limited fields ("12 / 400 characters").
  function countCharacters(field) {
    var counter = document.querySelector('[data-char-count-for="' + field.id + '"]');
    if (!counter) return;
    var max = parseInt(counter.getAttribute("data-max"), 10);
    var count = Array.from(field.value).length;
    var template = counter.getAttribute("data-template") || counter.textContent.replace(/\d[\d,]*/, "{count}");
    counter.setAttribute("data-template", template);
    counter.textContent = template.replace("{count}", count.toLocaleString());
    counter.classList.toggle("over", count > max);
  }
  document.addEventListener("input", function (event) {
    if (event.target.id) countCharacters(event.target);
  });

  // An open menu closes on Escape or a click elsewhere.
  function closeMenus(except) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (menu !== except) menu.removeAttribute("open");
    });
  }
  document.addEventListener("click", function (event) {
    closeMenus(event.target.closest("details.menu"));
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var open = document.querySelector("details.menu[open]");
    if (!open) return;
    open.removeAttribute("open");
    open.querySelector("summary").focus();
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-autosubmit-button]").forEach(function (button) {
      button.hidden = true;
    });
    if (/Mac|iPhone|iPad/.test(navigator.platform || "")) {
      document.querySelectorAll("[data-shortcut-hint] kbd:first-child").forEach(function (key) {
        key.textContent = "⌘";
      });
    }
  });

  // A streaming answer needs nothing here when its connection is made again
  // (the browser's own retry with Last-Event-ID, or a new EventSource from
  // htmx): the server's first `delta` on every connection replaces all the
  // text shown, so nothing is doubled or lost.

  // After Generate, focus goes where the person needs it next: the first
  // field to correct, or the answer (brought into view on a phone, where it
  // sits under the form; beside the form on a wide screen it already shows).
  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail.target;
    if (!target || target.id !== "workspace") return;
    var invalid = target.querySelector(".has-error input, .has-error select, .has-error textarea");
    if (invalid) {
      invalid.focus();
      return;
    }
    var panel = target.querySelector(".result-panel");
    if (!panel || !panel.querySelector("[data-generation]")) return;
    panel.setAttribute("tabindex", "-1");
    var stacked = window.matchMedia("(max-width: 60rem)").matches;
    panel.focus({ preventScroll: !stacked });
  });

  // A chosen facet far along its sideways row is brought into view.
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".facet-list [aria-current]").forEach(function (chip) {
      var row = chip.closest(".facet-list");
      if (row.scrollWidth > row.clientWidth) {
        row.scrollLeft = chip.offsetLeft - row.clientWidth / 2 + chip.clientWidth / 2;
      }
    });
  });
})();
