// Reports: the print button (the browser's "print to PDF" gives the A4 document styled by report.css).
(function () {
  "use strict";
  var button = document.getElementById("print-report");
  if (button) { button.addEventListener("click", function () { window.print(); }); }
})();
