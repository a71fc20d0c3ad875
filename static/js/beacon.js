// Reports how long a page was read and how far it was scrolled, without blocking anything:
// navigator.sendBeacon when the page is hidden or closed. Only visible time counts.
(function () {
  "use strict";
  var page = document.querySelector("[data-beacon-token]");
  if (!page || !navigator.sendBeacon) return;
  var visibleSince = document.visibilityState === "visible" ? Date.now() : null;
  var dwellMs = 0;
  var maxScroll = 0;

  function scrollDepth() {
    var rect = page.getBoundingClientRect();
    var seen = window.innerHeight - rect.top;
    var pct = rect.height > 0 ? Math.round((seen / rect.height) * 100) : 100;
    return Math.max(0, Math.min(100, pct));
  }

  function send() {
    if (visibleSince !== null) {
      dwellMs += Date.now() - visibleSince;
      visibleSince = document.visibilityState === "visible" ? Date.now() : null;
    }
    var data = new FormData();
    data.append("token", page.dataset.beaconToken);
    data.append("dwell", String(Math.min(4 * 3600, Math.round(dwellMs / 1000))));
    data.append("scroll", String(maxScroll));
    data.append("completed", maxScroll >= 90 ? "on" : "");
    data.append("csrfmiddlewaretoken", page.dataset.csrf);
    navigator.sendBeacon(page.dataset.beaconUrl, data);
  }

  window.addEventListener("scroll", function () { maxScroll = Math.max(maxScroll, scrollDepth()); }, { passive: true });
  maxScroll = scrollDepth();
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") send();
    else visibleSince = Date.now();
  });
  window.addEventListener("pagehide", send);
})();
