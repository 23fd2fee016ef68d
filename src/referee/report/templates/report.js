(function () {
  "use strict";
  var PLOTS = window.REFEREE_PLOTS || {};
  var CONFIG = {displaylogo: false, responsive: true,
                modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"]};
  var drawn = {};

  function draw(div) {
    var key = div.getAttribute("data-plot");
    var fig = PLOTS[key];
    if (!fig) { div.classList.add("hidden"); return; }
    if (drawn[key]) { window.Plotly.Plots.resize(div); return; }
    drawn[key] = true;
    var config = Object.assign({}, CONFIG, {displayModeBar: div.getAttribute("data-modebar") === "yes" ? "hover" : false});
    window.Plotly.newPlot(div, fig.data, fig.layout, config);
    div.setAttribute("data-rendered", "yes");
  }

  document.querySelectorAll("[data-plot]").forEach(function (div) {
    if (div.getAttribute("data-lazy") !== "yes") { draw(div); }
  });

  // raw vs style-controlled leaderboard
  document.querySelectorAll(".toggle button[data-view]").forEach(function (btn) {
    btn.addEventListener("click", function () {
      var view = btn.getAttribute("data-view");
      document.querySelectorAll(".toggle button[data-view]").forEach(function (b) {
        var on = b.getAttribute("data-view") === view;
        b.classList.toggle("on", on);
        b.setAttribute("aria-selected", on ? "true" : "false");
      });
      document.querySelectorAll("[data-view-panel]").forEach(function (panel) {
        var show = panel.getAttribute("data-view-panel") === view;
        panel.classList.toggle("hidden", !show);
        if (show) { panel.querySelectorAll("[data-plot]").forEach(draw); }
      });
    });
  });

  // prompt explorer: search, filters, selection
  var list = document.getElementById("prompt-list");
  if (!list) { return; }
  var items = Array.prototype.slice.call(list.querySelectorAll("li[data-pid]"));
  var panels = {};
  document.querySelectorAll("#prompt-panels article[data-pid]").forEach(function (a) {
    panels[a.getAttribute("data-pid")] = a;
  });
  var haystack = {};
  items.forEach(function (li) {
    var pid = li.getAttribute("data-pid");
    var panel = panels[pid];
    haystack[pid] = (pid + "\n" + (panel ? panel.textContent : li.textContent)).toLowerCase();
  });
  var search = document.getElementById("search");
  var category = document.getElementById("category");
  var onlyInconsistent = document.getElementById("only-inconsistent");
  var onlyFailed = document.getElementById("only-failed");
  var counter = document.getElementById("prompt-count");
  var noMatch = document.getElementById("no-match");

  function select(pid) {
    items.forEach(function (li) { li.classList.toggle("sel", li.getAttribute("data-pid") === pid); });
    Object.keys(panels).forEach(function (k) { panels[k].classList.toggle("hidden", k !== pid); });
    noMatch.classList.toggle("hidden", pid !== null);
  }

  function apply() {
    var terms = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    var cat = category ? category.value : "";
    var shown = 0, first = null, selectedVisible = false;
    items.forEach(function (li) {
      var pid = li.getAttribute("data-pid");
      var ok = terms.every(function (t) { return haystack[pid].indexOf(t) >= 0; })
        && (!cat || li.getAttribute("data-category") === cat)
        && (!onlyInconsistent.checked || li.getAttribute("data-inconsistent") !== "0")
        && (!onlyFailed.checked || li.getAttribute("data-failed") !== "0");
      li.classList.toggle("hidden", !ok);
      if (ok) {
        shown += 1;
        if (first === null) { first = pid; }
        if (li.classList.contains("sel")) { selectedVisible = true; }
      }
    });
    counter.textContent = shown + " of " + items.length + " prompts";
    if (!selectedVisible) { select(first); }
  }

  items.forEach(function (li) {
    li.querySelector("button").addEventListener("click", function () { select(li.getAttribute("data-pid")); });
  });
  [search, category, onlyInconsistent, onlyFailed].forEach(function (el) {
    if (el) { el.addEventListener(el === search ? "input" : "change", apply); }
  });
})();
