// The dashboard's only script: an opt-in auto-refresh and a guard against double posts.
(function () {
  "use strict";
  var KEY = "soa-auto-refresh";
  var box = document.getElementById("auto-refresh");
  var timer = null;

  function schedule() {
    clearTimeout(timer);
    if (box && box.checked) {
      timer = setTimeout(function () {
        if (document.visibilityState === "visible") {
          window.location.reload();
        } else {
          schedule();
        }
      }, 10000);
    }
  }

  if (box) {
    box.checked = window.localStorage.getItem(KEY) === "1";
    box.addEventListener("change", function () {
      window.localStorage.setItem(KEY, box.checked ? "1" : "0");
      schedule();
    });
    schedule();
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.method.toLowerCase() !== "post") {
      return;
    }
    if (form.dataset.sent) {
      event.preventDefault();
      return;
    }
    form.dataset.sent = "1";
    Array.prototype.forEach.call(form.querySelectorAll("button"), function (button) {
      button.setAttribute("aria-busy", "true");
    });
  });
})();
