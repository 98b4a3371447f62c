// Follows an announcement's sending on its page: the progress bar and its
// text are refreshed every two seconds until every email is settled.
(function () {
	"use strict";
	var section = document.getElementById("announcement-progress");
	if (!section) { return; }
	var url = section.getAttribute("data-progress-url");
	var text = document.getElementById("progress-text");
	function plural(n, one, many) { return n > 1 ? many : one; }
	function show(p) {
		var bar = document.getElementById("progress-bar");
		if (p.total > 0) {
			if (!bar) {
				var holder = document.createElement("p");
				bar = document.createElement("progress");
				bar.id = "progress-bar";
				bar.setAttribute("aria-labelledby", "progression");
				holder.appendChild(bar);
				section.insertBefore(holder, text);
			}
			bar.max = p.total;
			bar.value = p.sent + p.failed + p.skipped;
		}
		var s;
		if (p.total < 0) {
			s = "Préparation de l'envoi…";
		} else if (p.total === 0) {
			s = "Aucun habitant ne pouvait recevoir cette annonce.";
		} else {
			s = "Envoyés : " + p.sent + " sur " + p.total + ". Échecs : " + p.failed + ".";
			if (p.skipped > 0) { s += " Désabonnés entre-temps : " + p.skipped + "."; }
			s += p.finished ? " Envoi terminé." : " Envoi en cours…";
		}
		if (text.textContent !== s) { text.textContent = s; }
	}
	function poll() {
		fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
			.then(function (r) { return r.ok ? r.json() : null; })
			.then(function (p) {
				if (!p) { return; }
				show(p);
				if (!p.finished) { setTimeout(poll, 2000); }
			})
			.catch(function () { setTimeout(poll, 5000); });
	}
	setTimeout(poll, 1000);
}());
