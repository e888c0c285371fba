// pgopt serve's pages: reload every data-refresh seconds unless the user turned it off
// (the choice is remembered in this browser). No other behaviour: the pages work without it.
(function () {
  "use strict";
  var KEY = "pgopt.autoRefresh";
  var seconds = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  var box = document.getElementById("auto-refresh");
  if (!seconds || !box) {
    return;
  }
  var stored = null;
  try {
    stored = window.localStorage.getItem(KEY);
  } catch (e) {
    stored = null; // storage disabled: refresh stays on for this page
  }
  box.checked = stored !== "off";
  var timer = null;
  function arm() {
    // Says on the page what the script did (the browser test reads it back).
    document.body.setAttribute("data-refresh-armed", box.checked ? "on" : "off");
    if (timer !== null) {
      window.clearTimeout(timer);
      timer = null;
    }
    if (box.checked) {
      timer = window.setTimeout(function () {
        window.location.reload();
      }, seconds * 1000);
    }
  }
  box.addEventListener("change", function () {
    try {
      window.localStorage.setItem(KEY, box.checked ? "on" : "off");
    } catch (e) {
      // not remembered; the page still does what the box says
    }
    arm();
  });
  arm();
})();
