// Progressive enhancement: refresh the referral list every 30 seconds (the page works without it).
// The fragment request does not keep the session alive; a 401 means the session ended.
(function () {
  "use strict";
  var rows = document.getElementById("rows");
  if (!rows || !window.fetch) { return; }
  var note = document.getElementById("refresh-note");
  if (note) { note.textContent = "This list refreshes itself every 30 seconds."; }
  var timer = window.setInterval(function () {
    fetch(rows.getAttribute("data-refresh"), { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (response.status === 401) {
          window.clearInterval(timer);
          if (note) { note.textContent = "You have been signed out. Refresh the page to sign in again."; }
          return null;
        }
        return response.ok ? response.text() : null;
      })
      .then(function (html) { if (html !== null) { rows.innerHTML = html; } })
      .catch(function () { /* offline for a moment: try again next time */ });
  }, 30000);
})();
