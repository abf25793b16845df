// Letters plugin: the live preview of the guided complaint form. The form works without it
// ("Show my letter" asks the server); with it, the letter and the tone hints follow the answers
// as they are typed. The server composes the letter (one place for the wording).
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  ready(function () {
    var form = document.getElementById("complaint-form");
    if (!form || !window.fetch || !window.FormData) { return; }
    var letter = document.getElementById("f-letter");
    var hints = document.getElementById("tone-hints");
    var url = form.getAttribute("data-preview-url");
    var timer = null;
    var asked = 0;

    letter.addEventListener("input", function () { letter.setAttribute("data-edited", "1"); });

    function showHints(list) {
      while (hints.firstChild) { hints.removeChild(hints.firstChild); }
      list.forEach(function (text) {
        var p = document.createElement("p");
        p.className = "letters-hint";
        p.textContent = text;
        hints.appendChild(p);
      });
    }

    function refresh() {
      var data = new FormData(form);
      data.delete("attachments");
      // A letter the customer did not touch is ours to recompose from the answers.
      if (!letter.getAttribute("data-edited")) { data.set("letter", ""); }
      var mine = ++asked;
      fetch(url, { method: "POST", body: data, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (answer) {
          if (!answer || mine !== asked) { return; }
          if (!letter.getAttribute("data-edited")) { letter.value = answer.composed; }
          showHints(answer.hints);
        })
        .catch(function () { /* the preview is a help; the form works without it */ });
    }

    form.addEventListener("input", function (event) {
      if (event.target && event.target.type === "file") { return; }
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, 300);
    });
    form.addEventListener("change", function (event) {
      if (event.target && (event.target.type === "radio" || event.target.type === "checkbox")) { refresh(); }
    });
    refresh();
  });

  // The ticket page: "Insert into the reply" fills the chosen template in and puts it in the
  // reply box (without JS the button stays hidden; "Fill in and edit" opens the composer).
  ready(function () {
    var form = document.querySelector("form.letters-pick");
    var reply = document.getElementById("reply-body");
    if (!form || !reply || !window.fetch) { return; }
    var button = form.querySelector(".letters-insert");
    var status = form.querySelector(".letters-insert-status");
    button.hidden = false;
    button.addEventListener("click", function () {
      var chosen = form.querySelector("select[name=template]").value;
      var url = form.getAttribute("data-filled-url") + "?template=" + encodeURIComponent(chosen);
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.json(); })
        .then(function (answer) {
          if (answer.text === undefined) { status.textContent = answer.message || ""; return; }
          reply.value = reply.value ? reply.value + "\n\n" + answer.text : answer.text;
          reply.focus();
          status.textContent = "";
        })
        .catch(function () { status.textContent = ""; });
    });
  });
})();
