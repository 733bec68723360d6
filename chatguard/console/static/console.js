// Live counts on the queue page: refresh the numbers every 10 s without a reload.
(function () {
  "use strict";
  var box = document.getElementById("counts");
  if (!box) { return; }
  function refresh() {
    fetch(box.dataset.src, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (counts) {
        if (!counts) { return; }
        box.querySelectorAll("[data-count]").forEach(function (cell) {
          var value = cell.dataset.count.split(".").reduce(function (node, part) {
            return node == null ? null : node[part];
          }, counts);
          if (value != null) { cell.textContent = String(value); }
        });
      })
      .catch(function () { /* offline for a moment: keep the last numbers */ });
  }
  setInterval(refresh, 10000);
})();
