// Admin: render the Markdown body with the site's own renderer and sanitizer (content:preview),
// and show it with the site's own style sheets. They are loaded into a shadow root, so the
// preview looks as members will see the article while neither the site's styles nor the
// admin's reach across (and nothing inline: the Content-Security-Policy allows none).
(function () {
  "use strict";
  var button = document.getElementById("md-preview-button");
  var pane = document.getElementById("md-preview");
  if (!button || !pane) return;
  var root = pane.attachShadow({ mode: "open" });
  var styles = document.getElementById("md-preview-styles");
  if (styles) root.appendChild(styles.content.cloneNode(true));
  var page = document.createElement("div");
  page.className = "site-preview";
  page.setAttribute("data-bs-theme", "light");
  page.hidden = true;
  var body = document.createElement("div");
  body.className = "prose";
  page.appendChild(body);
  root.appendChild(page);

  function show(html, failed) {
    if (failed) body.textContent = html;
    else body.innerHTML = html; // already sanitized by the server, like the article page
    page.hidden = false;
  }

  button.addEventListener("click", function () {
    var source = document.getElementById("id_body");
    var csrf = document.querySelector("[name=csrfmiddlewaretoken]");
    var data = new FormData();
    data.append("body", source ? source.value : "");
    data.append("csrfmiddlewaretoken", csrf ? csrf.value : "");
    fetch(button.dataset.url, { method: "POST", body: data, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.json();
      })
      .then(function (json) { show(json.html, false); })
      .catch(function () { show(button.dataset.error, true); });
  });
})();
