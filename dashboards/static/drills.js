// Jukimon console: the running drill's progress. Every few seconds the page fetches /drills/panel (the same
// server-rendered fragment as the page, autoescaped there) and puts it in place of the old one (the control
// buttons stay: they are outside it); when the drill has ended the whole page reloads once, to show the start
// form and the report again.
(function () {
  "use strict";
  var panel = document.getElementById("drill-panel");
  if (!panel) { return; }
  var PERIOD_MS = 3000;
  var ACTIVE = { preparing: true, running: true, paused: true, closing: true };
  if (!ACTIVE[panel.dataset.status]) { return; }

  function refresh() {
    fetch("/drills/panel", { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
      .then(function (html) {
        var parsed = new DOMParser().parseFromString(html, "text/html");
        var body = parsed.querySelector(".panel-body");
        if (!body) { return; }
        if (!ACTIVE[body.dataset.status]) { window.location.reload(); return; }
        panel.querySelector(".panel-body").replaceWith(document.importNode(body, true));
        window.setTimeout(refresh, PERIOD_MS);
      })
      .catch(function () { window.setTimeout(refresh, 4 * PERIOD_MS); });
  }
  window.setTimeout(refresh, PERIOD_MS);
}());
