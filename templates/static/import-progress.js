// The progress bar of an import's page: polls the batch's progress every
// second and updates the bar and its status line; once the import is
// finished, reloads the page to show its report. Without JavaScript the
// page refreshes itself (<noscript> meta refresh) and offers a link.
(function () {
  "use strict";
  var box = document.getElementById("import-progress");
  if (!box || box.getAttribute("data-finished") === "true") {
    return;
  }
  var bar = document.getElementById("progress-bar");
  var text = document.getElementById("progress-text");
  var url = box.getAttribute("data-url");
  var failures = 0;
  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (res) {
        if (!res.ok) {
          throw new Error(String(res.status));
        }
        return res.json();
      })
      .then(function (p) {
        failures = 0;
        bar.value = p.percent;
        bar.textContent = p.percent + " %";
        if (text.textContent !== p.text) {
          text.textContent = p.text;
        }
        if (p.finished) {
          window.location.reload();
          return;
        }
        window.setTimeout(poll, 1000);
      })
      .catch(function () {
        // A session that ended, or the server restarting: keep trying a
        // little, then leave the "Rafraîchir" link to the reader.
        failures++;
        if (failures < 30) {
          window.setTimeout(poll, 2000);
        }
      });
  }
  window.setTimeout(poll, 1000);
})();
