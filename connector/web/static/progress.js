// A progress indication for anything that calls Autotask: a submit button (or its form) with
// data-progress="Checking…" is disabled and says so while the page waits for the answer.
// Without JavaScript the forms work the same, only without the indication.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var button = event.submitter || form.querySelector("button[type=submit], button:not([type])");
    var text = (button && button.getAttribute("data-progress")) || form.getAttribute("data-progress");
    if (!text || !button) {
      return;
    }
    if (form.getAttribute("aria-busy") === "true") {
      event.preventDefault(); // already sent: a second click would call Autotask again
      return;
    }
    if (button.name) {
      // A disabled button is not sent with the form: carry which one was pressed.
      var pressed = document.createElement("input");
      pressed.type = "hidden";
      pressed.name = button.name;
      pressed.value = button.value;
      pressed.setAttribute("data-pressed", "");
      form.appendChild(pressed);
    }
    form.setAttribute("aria-busy", "true");
    button.setAttribute("data-label", button.textContent);
    button.disabled = true;
    button.textContent = text;
  });
  // Back from the answer page (the browser's page cache), the form is usable again.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[aria-busy=true]").forEach(function (form) {
      form.removeAttribute("aria-busy");
      form.querySelectorAll("input[data-pressed]").forEach(function (input) {
        input.remove();
      });
      form.querySelectorAll("button[data-label]").forEach(function (button) {
        button.textContent = button.getAttribute("data-label");
        button.removeAttribute("data-label");
        button.disabled = false;
      });
    });
  });
})();
