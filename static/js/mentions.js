// @mention autocomplete for text boxes with data-mention-url. Typing "@" and a few letters of
// a handle or display name lists members who can read the area; Up/Down, Enter or Tab picks
// one, Escape closes. Without JavaScript members can still type @handle by hand.
(function () {
  "use strict";
  var TRIGGER = /(^|[^\w@])@([^\s@]{1,30})$/;
  var counter = 0;

  function attach(box) {
    var id = "mention-list-" + ++counter;
    var list = document.createElement("ul");
    list.id = id;
    list.className = "mention-list list-group shadow-sm";
    list.setAttribute("role", "listbox");
    list.hidden = true;
    box.parentNode.style.position = "relative";
    box.parentNode.appendChild(list);
    box.setAttribute("aria-autocomplete", "list");
    box.setAttribute("aria-controls", id);
    box.setAttribute("aria-expanded", "false");

    var results = [];
    var active = -1;
    var timer = null;
    var request = null;
    var query = null;

    function close() {
      list.hidden = true;
      list.textContent = "";
      results = [];
      active = -1;
      box.setAttribute("aria-expanded", "false");
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
      close();
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
        item.appendChild(handle);
        item.addEventListener("mousedown", function (event) {
          event.preventDefault();  // keep the focus in the text box
          pick(i);
        });
        list.appendChild(item);
      });
      list.style.top = box.offsetTop + box.offsetHeight + "px";
      list.style.left = box.offsetLeft + "px";
      list.hidden = false;
      box.setAttribute("aria-expanded", "true");
      highlight(0);
    }

    function pick(index) {
      var member = results[index];
      if (!member) return;
      var end = box.selectionStart;
      var before = box.value.slice(0, end).replace(TRIGGER, function (all, lead) {
        return lead + "@" + member.handle + " ";
      });
      box.value = before + box.value.slice(end);
      box.setSelectionRange(before.length, before.length);
      close();
      box.focus();
    }

    function lookup() {
      var match = TRIGGER.exec(box.value.slice(0, box.selectionStart));
      if (!match) {
        query = null;
        close();
        return;
      }
      if (match[2] === query) return;
      query = match[2];
      clearTimeout(timer);
      timer = setTimeout(function () {
        if (request) request.abort();
        request = new AbortController();
        var url = box.dataset.mentionUrl + "&q=" + encodeURIComponent(query);
        fetch(url, { credentials: "same-origin", signal: request.signal })
          .then(function (response) { return response.ok ? response.json() : { results: [] }; })
          .then(function (data) { show(data.results || []); })
          .catch(function () {});
      }, 150);
    }

    box.addEventListener("input", lookup);
    box.addEventListener("blur", function () { setTimeout(close, 100); });
    box.addEventListener("keydown", function (event) {
      if (list.hidden) return;
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        var step = event.key === "ArrowDown" ? 1 : -1;
        highlight((active + step + results.length) % results.length);
      } else if (event.key === "Enter" || event.key === "Tab") {
        event.preventDefault();
        pick(active);
      } else if (event.key === "Escape") {
        event.preventDefault();
        close();
      }
    });
  }

  document.querySelectorAll("textarea[data-mention-url]").forEach(attach);
})();
