// Progressive enhancement for the console: every page works without this file.
// No inline script anywhere (the Content-Security-Policy forbids it), so behaviour hangs on data- attributes.
(function () {
  "use strict";

  // Organization switcher: navigate on change (the <noscript> links cover the no-JS case).
  document.addEventListener("change", function (event) {
    var select = event.target.closest("select[data-navigate]");
    if (select && select.value) window.location = select.value;
  });

  // Destructive plain forms ask first; htmx requests use hx-confirm instead.
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
  });

  // Keyboard for lists marked data-keyboard-list: j/k move, x selects, Enter opens, / focuses search.
  function rows() {
    var list = document.querySelector("[data-keyboard-list]");
    return list ? Array.prototype.slice.call(list.querySelectorAll("[data-row]")) : [];
  }
  function move(delta) {
    var all = rows();
    if (!all.length) return;
    var index = all.findIndex(function (row) { return row.classList.contains("is-current"); });
    var next = Math.max(0, Math.min(all.length - 1, index + delta));
    if (index >= 0) all[index].classList.remove("is-current");
    all[next].classList.add("is-current");
    all[next].scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (event) {
    var tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || event.ctrlKey || event.metaKey || event.altKey) return;
    var current = document.querySelector("[data-keyboard-list] [data-row].is-current");
    if (event.key === "j") { move(1); event.preventDefault(); }
    else if (event.key === "k") { move(-1); event.preventDefault(); }
    else if (event.key === "x" && current) {
      var box = current.querySelector("input[type=checkbox]");
      if (box) { box.checked = !box.checked; box.dispatchEvent(new Event("change", { bubbles: true })); }
      event.preventDefault();
    } else if (event.key === "Enter" && current) {
      var link = current.querySelector("a[href]");
      if (link) { window.location = link.href; event.preventDefault(); }
    } else if (event.key === "/") {
      var search = document.querySelector("[data-search]");
      if (search) { search.focus(); event.preventDefault(); }
    }
  });

  // htmx restores a page it did not cache (the node list is marked hx-history="false") with a request it never
  // cancels. After two quick Backs the older answer could land last and put its table under the newer URL, so
  // a new restore cancels the one still on its way.
  var restoring = null;
  function cancelRestoring() {
    if (restoring) restoring.abort();
    restoring = null;
  }
  document.addEventListener("htmx:historyCacheHit", cancelRestoring);
  document.addEventListener("htmx:historyCacheMiss", function (event) {
    cancelRestoring();
    restoring = event.detail.xhr;
  });
  document.addEventListener("htmx:historyRestore", function (event) {
    if (event.detail.cacheMiss) restoring = null;
  });

  // "Select all" boxes: data-select-all="name" toggles every checkbox of that name.
  document.addEventListener("change", function (event) {
    var all = event.target.closest("input[data-select-all]");
    if (!all) return;
    document.querySelectorAll("input[type=checkbox][name='" + all.getAttribute("data-select-all") + "']")
      .forEach(function (box) { box.checked = all.checked; });
  });

  // Bulk bars (form[data-bulk-bar="finding"]): say how many rows are ticked, and are marked empty while none is
  // (on a phone an empty bar is hidden); "every finding matching" counts as a choice. Without this file the bar shows.
  function syncBulkBars() {
    document.querySelectorAll("form[data-bulk-bar]").forEach(function (bar) {
      var name = bar.getAttribute("data-bulk-bar");
      var ticked = document.querySelectorAll("input[type=checkbox][name='" + name + "'][form='" + bar.id + "']:checked").length;
      var matching = bar.querySelector("input[name=matching]");
      var count = bar.querySelector("[data-bulk-count]");
      if (count) count.textContent = ticked ? ticked + " selected" : "";
      bar.classList.toggle("is-empty", ticked === 0 && !(matching && matching.checked));
    });
  }
  document.addEventListener("change", syncBulkBars);
  document.addEventListener("htmx:afterSettle", syncBulkBars);
  syncBulkBars();

  // Fields that matter for one choice only: data-shown-for="kind=node" shows the field while the
  // form's "kind" is "node" and hides it otherwise (without this file every field shows).
  function syncShownFor(root) {
    root.querySelectorAll("[data-shown-for]").forEach(function (field) {
      var rule = field.getAttribute("data-shown-for").split("=");
      var form = field.closest("form");
      var chooser = form && form.querySelector("[name='" + rule[0] + "']");
      if (chooser) field.hidden = chooser.value !== rule[1];
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target.form) syncShownFor(event.target.form);
  });
  syncShownFor(document);
})();
