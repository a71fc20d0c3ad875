// @mention autocomplete for text boxes with data-mention-url. Typing "@" and a few letters of
// a handle or display name lists members who can read the area; Up/Down, Enter or Tab picks
// one, Escape closes. Without JavaScript members can still type @handle by hand.
(function () {
  "use strict";
  // The server's rule (content/markdown.py): no ASCII letter, digit, _, @, / or . before the @.
  var TRIGGER = /(^|[^A-Za-z0-9_@\/.])@([^\s@]{1,30})$/;
  var counter = 0;

  function attach(box) {
    var id = "mention-list-" + ++counter;
    var list = document.createElement("ul");
    list.id = id;
    list.className = "mention-list list-group shadow-sm";
    list.setAttribute("role", "listbox");
    if (box.hasAttribute("data-mention-label")) list.setAttribute("aria-label", box.getAttribute("data-mention-label"));
    list.hidden = true;
    box.parentNode.style.position = "relative";
    box.parentNode.appendChild(list);
    box.setAttribute("aria-autocomplete", "list");
    box.setAttribute("aria-controls", id);
    // No aria-expanded: a textarea keeps its textbox role, which does not take it (a combobox
    // role is not allowed on a textarea); the active option is announced via activedescendant.

    var results = [];
    var active = -1;
    var timer = null;
    var request = null;
    var query = null;

    function cancel() {
      clearTimeout(timer);
      if (request) request.abort();
      request = null;
    }

    function close() {
      cancel();
      list.hidden = true;
      list.textContent = "";
      results = [];
      active = -1;
      box.removeAttribute("aria-activedescendant");
    }

    function highlight(index) {
      active = index;
      Array.prototype.forEach.call(list.children, function (item, i) {
        item.classList.toggle("active", i === index);
        item.setAttribute("aria-selected", i === index ? "true" : "false");
      });
      if (index >= 0) box.setAttribute("aria-activedescendant", id + "-" + index);
    }

    function show(found) {
      list.textContent = "";
      results = found;
      if (!found.length) return;
      found.forEach(function (member, i) {
        var item = document.createElement("li");
        item.id = id + "-" + i;
        item.className = "list-group-item list-group-item-action py-1";
        item.setAttribute("role", "option");
        var name = document.createElement("span");
        name.textContent = member.name;  // textContent: names are never parsed as HTML
        var handle = document.createElement("span");
        handle.className = "text-body-secondary ms-2 small";
        handle.textContent = "@" + member.handle;
        item.appendChild(name);
        // A member without a display name is shown as their @handle already.
        if (member.name !== handle.textContent) item.appendChild(handle);
        item.addEventListener("mousedown", function (event) {
          event.preventDefault();  // keep the focus in the text box
          pick(i);
        });
        list.appendChild(item);
      });
      list.style.top = box.offsetTop + box.offsetHeight + "px";
      list.style.left = box.offsetLeft + "px";
      list.hidden = false;
      highlight(0);
    }

    function pick(index) {
      var member = results[index];
      if (!member || !TRIGGER.test(box.value.slice(0, box.selectionStart))) return false;
      var end = box.selectionStart;
      var before = box.value.slice(0, end).replace(TRIGGER, function (all, lead) {
        return lead + "@" + member.handle + " ";
      });
      box.value = before + box.value.slice(end);
      box.setSelectionRange(before.length, before.length);
      query = null;
      close();
      box.focus();
      return true;
    }

    function typed() {
      var match = TRIGGER.exec(box.value.slice(0, box.selectionStart));
      return match ? match[2] : null;
    }

    function lookup() {
      var wanted = typed();
      if (wanted === query) return;
      query = wanted;
      close();
      if (wanted === null) return;
      timer = setTimeout(function () {
        var controller = new AbortController();
        request = controller;
        var url = box.dataset.mentionUrl + "&q=" + encodeURIComponent(wanted);
        fetch(url, { credentials: "same-origin", signal: controller.signal })
          .then(function (response) { return response.ok ? response.json() : { results: [] }; })
          .then(function (data) {
            if (typed() === wanted && document.activeElement === box) show(data.results || []);
          })
          .catch(function () {});
      }, 150);
    }

    var composing = false;  // an input method (e.g. pinyin) is still building a word
    box.addEventListener("compositionstart", function () { composing = true; });
    box.addEventListener("compositionend", function () { composing = false; lookup(); });
    box.addEventListener("input", function () { if (!composing) lookup(); });
    box.addEventListener("click", lookup);
    box.addEventListener("blur", function () { setTimeout(function () { query = null; close(); }, 100); });
    box.addEventListener("keydown", function (event) {
      if (list.hidden || composing || event.isComposing || event.keyCode === 229) return;
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        var step = event.key === "ArrowDown" ? 1 : -1;
        highlight((active + step + results.length) % results.length);
      } else if (event.key === "Enter" || event.key === "Tab") {
        if (pick(active)) event.preventDefault();
      } else if (event.key === "Escape") {
        event.preventDefault();
        close();
      } else if (event.key === "ArrowLeft" || event.key === "ArrowRight" || event.key === "Home" || event.key === "End") {
        setTimeout(lookup, 0);  // the caret moved: suggest for wherever it is now
      }
    });
  }

  document.querySelectorAll("textarea[data-mention-url]").forEach(attach);
})();
