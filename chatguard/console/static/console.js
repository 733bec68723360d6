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
        Object.keys(counts).forEach(function (key) {
          var cell = box.querySelector('[data-count="' + key + '"]');
          if (cell) { cell.textContent = String(counts[key]); }
        });
      })
      .catch(function () { /* offline for a moment: keep the last numbers */ });
  }
  setInterval(refresh, 10000);
})();
