// Call-centre intake: caller type-ahead (/triage/callers.json), then at once the caller's panel (/triage/panel) and,
// as the operator types the call, similar answers (/triage/similar). Without this script the 確認 button does the same
// with a page load. Fragments are the server's own autoescaped HTML; caller names are inserted as text only.
(function () {
  "use strict";
  var input = document.getElementById("caller");
  var list = document.getElementById("caller-options");
  var site = document.getElementById("site");
  var panel = document.getElementById("caller-panel");
  var similar = document.getElementById("similar");
  var MAX_QUERY = 300;  // the server reads at most a dozen terms; keep the URL short

  function debounce(fn, ms) {
    var timer;
    return function () { clearTimeout(timer); timer = setTimeout(fn, ms); };
  }

  function fragment(url, into) {
    return fetch(url, { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
      .then(function (html) { into.innerHTML = html; });
  }

  // --- caller type-ahead ---------------------------------------------------------------------------------------
  if (input && list && site && panel) {
    var asked = 0;
    var close = function () {
      list.hidden = true;
      list.textContent = "";
      input.setAttribute("aria-expanded", "false");
    };
    var choose = function (caller) {
      input.value = caller.label;
      site.value = caller.site;
      close();
      history.replaceState(null, "", "/triage?site=" + encodeURIComponent(caller.site));
      fragment("/triage/panel?select=1&site=" + encodeURIComponent(caller.site), panel);
    };
    var show = function (callers) {
      list.textContent = "";
      callers.forEach(function (caller) {
        var item = document.createElement("li");
        item.setAttribute("role", "option");
        var button = document.createElement("button");
        button.type = "button";
        button.textContent = caller.label + " ";
        var code = document.createElement("small");
        code.className = "mono";
        code.textContent = caller.code;
        button.appendChild(code);
        button.addEventListener("click", function () { choose(caller); });
        item.appendChild(button);
        list.appendChild(item);
      });
      list.hidden = callers.length === 0;
      input.setAttribute("aria-expanded", String(!list.hidden));
    };
    var suggest = debounce(function () {
      var query = input.value.trim();
      var mine = ++asked;
      if (!query) { close(); return; }
      fetch("/triage/callers.json?q=" + encodeURIComponent(query), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (callers) { if (mine === asked) { show(callers); } });  // answers may arrive out of order
    }, 150);
    input.addEventListener("input", function () { site.value = ""; suggest(); });
    input.addEventListener("keydown", function (e) {
      var first = list.querySelector("button");
      if (e.key === "Escape") { close(); }
      if (!first || list.hidden) { return; }
      if (e.key === "ArrowDown") { e.preventDefault(); first.focus(); }
      if (e.key === "Enter") { e.preventDefault(); first.click(); }
    });
    list.addEventListener("keydown", function (e) {
      var item = e.target.closest("li");
      if (!item) { return; }
      var next = e.key === "ArrowDown" ? item.nextElementSibling : e.key === "ArrowUp" ? item.previousElementSibling : null;
      if (next) { e.preventDefault(); next.querySelector("button").focus(); }
      if (e.key === "ArrowUp" && !next) { e.preventDefault(); input.focus(); }
      if (e.key === "Escape") { close(); input.focus(); }
    });
    document.addEventListener("click", function (e) {
      if (!e.target.closest(".typeahead")) { close(); }
    });
  }

  // --- similar answers while the call is typed -----------------------------------------------------------------
  var title = document.getElementById("title");
  var description = document.getElementById("description");
  if (title && description && similar) {
    var refresh = debounce(function () {
      var query = (title.value + " " + description.value).trim().slice(0, MAX_QUERY);
      fragment("/triage/similar?q=" + encodeURIComponent(query), similar);
    }, 400);
    title.addEventListener("input", refresh);
    description.addEventListener("input", refresh);
  }
})();
