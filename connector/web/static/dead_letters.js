// The dead letters page: a confirm before "Replay all", and word of progress while a replay runs.
// Without JavaScript the forms work the same, minus the confirm and the progress line.
(function () {
  "use strict";
  var progress = document.getElementById("progress");
  document.querySelectorAll("form[data-busy]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var question = form.getAttribute("data-confirm");
      if (question && !window.confirm(question)) {
        event.preventDefault();
        return;
      }
      if (form.dataset.sent) { // a second click while the first is on its way
        event.preventDefault();
        return;
      }
      form.dataset.sent = "yes";
      form.setAttribute("aria-busy", "true");
      form.querySelectorAll("button").forEach(function (button) {
        button.disabled = true;
      });
      if (progress) {
        progress.textContent = form.getAttribute("data-busy");
        progress.hidden = false;
      }
    });
  });
})();
