/* Behaviour every page shares, wired from data attributes because the Content-Security-Policy
   runs no inline script or event handler (docs/operations.md, "Security headers").
   - <select data-autosubmit> submits its form when changed (the language switcher; a
     <noscript> button does the same without JavaScript);
   - <form data-confirm="Question?"> asks before it is sent. */
(function () {
  "use strict";

  document.addEventListener("change", function (event) {
    var field = event.target;
    if (field instanceof HTMLSelectElement && field.hasAttribute("data-autosubmit") && field.form) {
      field.form.requestSubmit ? field.form.requestSubmit() : field.form.submit();
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });
})();
