// Alarm console: "select all" for the bulk acknowledgement form.
(function () {
  "use strict";
  var all = document.getElementById("select-all");
  if (!all) { return; }
  all.addEventListener("change", function () {
    document.querySelectorAll("#bulk input[name='fingerprint']").forEach(function (box) { box.checked = all.checked; });
  });
})();
