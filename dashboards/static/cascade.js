// Jukimon console: a cascade report's live progress. Every few seconds the page fetches
// /cascade/<report>/progress (the JSON of the tracker's progress, narrowed like the page) and updates
// the counts, bars, prefecture rows and the missing list in place. Text only (textContent), never HTML.
(function () {
  "use strict";
  var root = document.getElementById("report");
  if (!root) { return; }
  var strings = JSON.parse(document.getElementById("cascade-strings").textContent);
  var PERIOD_MS = 5000;
  var url = "/cascade/" + encodeURIComponent(root.dataset.report) + "/progress" +
            (root.dataset.pref ? "?pref=" + encodeURIComponent(root.dataset.pref) : "");
  var japanese = (document.body.dataset.lang || "ja") === "ja";
  // The server's when(): era date in Japanese (令和8年12月2日 10:05:00), ISO-like with JST in English.
  var stampFmt = japanese
    ? new Intl.DateTimeFormat("ja-JP-u-ca-japanese", { era: "long", year: "numeric", month: "long", day: "numeric",
                                                       hour: "2-digit", minute: "2-digit", second: "2-digit",
                                                       hour12: false, timeZone: "Asia/Tokyo" })
    : new Intl.DateTimeFormat("sv-SE", { dateStyle: "short", timeStyle: "medium", timeZone: "Asia/Tokyo" });

  function stamp(ts) {
    return ts ? stampFmt.format(new Date(ts * 1000)) + (japanese ? "" : " JST") : "\u2014";
  }

  function cell(row, text, cls) {
    var td = document.createElement("td");
    if (cls) { td.className = cls; }
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function missingRow(m) {
    var tr = document.createElement("tr");
    tr.dataset.status = m.status;
    cell(tr, m.name);
    cell(tr, m.id, "mono");
    cell(tr, strings["tier." + m.tier] || m.tier);
    cell(tr, m.prefecture || "", "mono");
    var tag = document.createElement("span");
    tag.className = "tag status";
    tag.dataset.status = m.status;
    tag.textContent = strings["status." + m.status] || m.status;
    cell(tr, "").appendChild(tag);
    cell(tr, String(m.reminders), "num");
    return tr;
  }

  function organisationRow(o) {
    var tr = document.createElement("tr");
    cell(tr, o.name);
    cell(tr, o.id, "mono");
    cell(tr, stamp(o.sent_at));
    cell(tr, o.delivered_at ? stamp(o.delivered_at) : (o.error || "\u2014"));
    cell(tr, stamp(o.confirmed_at));
    cell(tr, o.confirmed_via ? strings["via." + o.confirmed_via] || o.confirmed_via : "\u2014");
    cell(tr, o.confirmed_by || "\u2014");
    cell(tr, String(o.reminders || 0), "num");
    return tr;
  }

  function apply(p) {
    Object.keys(p.counts).forEach(function (key) {
      root.querySelectorAll("[data-count='" + key + "']").forEach(function (el) { el.textContent = p.counts[key]; });
    });
    root.querySelectorAll("[data-bar]").forEach(function (bar) {
      bar.max = p.counts.targets || 1;
      bar.value = p.counts[bar.dataset.bar];
    });
    p.prefectures.forEach(function (pref) {
      var row = root.querySelector("[data-pref-row='" + CSS.escape(pref.id) + "']");
      if (!row) { return; }
      row.querySelector("[data-cell=delivered]").textContent = pref.delivered;
      row.querySelector("[data-cell=confirmed]").textContent = pref.confirmed + " / " + pref.targets;
      row.querySelector("[data-cell=bar]").value = pref.confirmed;
      var forwarded = row.querySelector("[data-cell=forwarded]");
      if (pref.forwarded_at && forwarded.querySelector("form")) {
        forwarded.textContent = stamp(pref.forwarded_at) + " " + (pref.forwarded_by || "");
      }
    });
    var body = root.querySelector("[data-missing]");
    body.replaceChildren.apply(body, p.missing.map(missingRow));
    root.querySelector("[data-missing-count]").textContent = p.missing.length;
    root.querySelector("[data-none]").hidden = p.missing.length > 0;
    var list = document.getElementById("missing-orgs");
    if (list) {
      list.replaceChildren.apply(list, p.missing.map(function (m) {
        var option = document.createElement("option");
        option.value = m.id;
        option.textContent = m.name;
        return option;
      }));
    }
    var orgs = root.querySelector("[data-orgs]");
    if (orgs) { orgs.replaceChildren.apply(orgs, p.organisations.map(organisationRow)); }
    root.querySelector("[data-updated]").textContent = stamp(p.at);
  }

  function refresh() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (p) { apply(p); setTimeout(refresh, PERIOD_MS); })
      .catch(function () { setTimeout(refresh, PERIOD_MS * 3); });  // signed out or server gone: try less often
  }
  setTimeout(refresh, PERIOD_MS);
})();
