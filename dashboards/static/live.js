// Jukimon console: live updates over Server-Sent Events (/live), the JST clock, root-cause children on demand.
// No framework, no build step. The server renders everything; this only recolours what the events name:
//   [data-site="id"] / [data-device="id"]  → data-state attribute (CSS colours it), [data-state-label] → text
//   [data-pref]  (a prefecture card)       → worst state of its tiles
//   [data-count-state="down"]              → how many municipality tiles (.muni) are in that state
//   [data-alarm-count="critical"], [data-alarm-open], [data-alarm-unacked] → alarm counts
(function () {
  "use strict";
  var strings = JSON.parse(document.getElementById("strings").textContent);
  var RANK = { down: 0, unreachable: 1, degraded: 2, maintenance: 3, off_schedule: 4, unknown: 5, up: 6 };
  var SEVERE = { emergency: "critical", alert: "critical", critical: "critical", error: "error",
                 warning: "warning", notice: "notice" };

  // --- the clock (JST, era date in Japanese) -----------------------------------------------------------------
  var lang = document.body.dataset.lang || "ja";
  var clock = document.getElementById("clock");
  var dateFmt = lang === "ja"
    ? new Intl.DateTimeFormat("ja-JP-u-ca-japanese", { era: "long", year: "numeric", month: "long", day: "numeric",
                                                      timeZone: "Asia/Tokyo" })
    : new Intl.DateTimeFormat("en-CA", { year: "numeric", month: "2-digit", day: "2-digit", timeZone: "Asia/Tokyo" });
  var timeFmt = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit",
                                                   hour12: false, timeZone: "Asia/Tokyo" });
  function tick() {
    var now = new Date();
    clock.textContent = dateFmt.format(now) + " " + timeFmt.format(now) + (lang === "ja" ? "" : " JST");
  }
  if (clock) { tick(); setInterval(tick, 1000); }

  // --- applying events ---------------------------------------------------------------------------------------
  function setState(selector, state) {
    document.querySelectorAll(selector).forEach(function (el) {
      if (el.dataset.state === state) { return; }
      el.dataset.state = state;
      el.classList.remove("flip"); void el.offsetWidth; el.classList.add("flip");
      var label = el.matches("[data-state-label]") ? el : el.querySelector("[data-state-label]");
      if (label) { label.textContent = strings["state." + state] || state; }
      if (el.title) { el.title = el.title.replace(/:.*$/, ": " + (strings["state." + state] || state)); }
    });
  }

  function worstOf(elements) {
    var worst = "up";
    elements.forEach(function (el) {
      var s = el.dataset.state || "unknown";
      if (RANK[s] < RANK[worst]) { worst = s; }
    });
    return worst;
  }

  function refreshAggregates() {
    document.querySelectorAll("[data-pref]").forEach(function (card) {
      card.dataset.state = worstOf(card.querySelectorAll("[data-site], [data-device]"));
    });
    document.querySelectorAll("[data-count-state]").forEach(function (el) {
      el.textContent = document.querySelectorAll(".muni[data-state='" + el.dataset.countState + "']").length;
    });
  }

  function onState(data) {
    Object.keys(data.sites || {}).forEach(function (id) {
      setState("[data-site='" + CSS.escape(id) + "']", data.sites[id]);
    });
    Object.keys(data.devices || {}).forEach(function (id) {
      setState("[data-device='" + CSS.escape(id) + "']", data.devices[id]);
    });
    refreshAggregates();
  }

  function onAlarms(data) {
    var bucket = { critical: 0, error: 0, warning: 0, notice: 0 };
    Object.keys(data.by_severity || {}).forEach(function (sev) {
      var key = SEVERE[sev];
      if (key) { bucket[key] += data.by_severity[sev]; }
    });
    Object.keys(bucket).forEach(function (key) {
      document.querySelectorAll("[data-alarm-count='" + key + "']").forEach(function (el) {
        el.textContent = bucket[key];
      });
    });
    document.querySelectorAll("[data-alarm-open]").forEach(function (el) { el.textContent = data.open; });
    document.querySelectorAll("[data-alarm-unacked]").forEach(function (el) { el.textContent = data.unacknowledged; });
  }

  var toasts = document.getElementById("toasts");
  function toast(kind, title, text) {
    var el = document.createElement("div");
    el.className = "toast " + kind;
    var b = document.createElement("b");
    b.textContent = title + " ";
    el.appendChild(b);
    el.appendChild(document.createTextNode(text));  // text, never HTML: summaries come from devices
    toasts.appendChild(el);
    while (toasts.children.length > 5) { toasts.removeChild(toasts.firstChild); }
    setTimeout(function () { if (el.parentNode) { el.parentNode.removeChild(el); } }, 12000);
  }

  function onConditions(data) {
    (data.raised || []).forEach(function (c) { toast("raised", strings.raised, c.summary); });
    (data.cleared || []).forEach(function (c) { toast("cleared", strings.cleared, c.summary); });
  }

  // --- the stream --------------------------------------------------------------------------------------------
  var dot = document.getElementById("live-status");
  function status(state, title) {
    if (dot) { dot.dataset.state = state; dot.title = title; }
  }
  if (document.body.dataset.live === "on" && window.EventSource) {
    var hellos = 0;
    var source = new EventSource("/live");
    source.addEventListener("hello", function () {
      hellos += 1;
      status("open", strings.connected);
      if (hellos > 1) { window.location.reload(); }  // reconnected: events were missed, catch up
    });
    source.addEventListener("state", function (e) { onState(JSON.parse(e.data)); });
    source.addEventListener("alarms", function (e) { onAlarms(JSON.parse(e.data)); });
    source.addEventListener("conditions", function (e) { onConditions(JSON.parse(e.data)); });
    source.addEventListener("notification", function (e) {
      toast("", strings.notification, JSON.parse(e.data).subject);
    });
    source.onerror = function () { status("error", strings.disconnected); };
    window.addEventListener("pagehide", function () { source.close(); });
  }

  // --- root-cause children, fetched when opened ----------------------------------------------------------------
  document.addEventListener("toggle", function (e) {
    var details = e.target;
    if (!details.matches || !details.matches("details[data-children-url]") || !details.open ||
        details.dataset.loaded) { return; }
    details.dataset.loaded = "1";
    fetch(details.dataset.childrenUrl, { credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) {  // server-rendered, autoescaped fragment of our own origin
        var box = details.querySelector(".loaded");
        box.innerHTML = html;
      });
  }, true);
})();
