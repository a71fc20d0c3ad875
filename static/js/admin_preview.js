// Admin: render the Markdown body with the site's own renderer and sanitizer.
(function () {
  "use strict";
  var button = document.getElementById("md-preview-button");
  if (!button) return;
  button.addEventListener("click", function () {
    var body = document.getElementById("id_body");
    var csrf = document.querySelector("[name=csrfmiddlewaretoken]");
    var data = new FormData();
    data.append("body", body ? body.value : "");
    data.append("csrfmiddlewaretoken", csrf ? csrf.value : "");
    fetch(button.dataset.url, { method: "POST", body: data, credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (json) { document.getElementById("md-preview").innerHTML = json.html; });
  });
})();
