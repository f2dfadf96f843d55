// Progress for forms that call Autotask or a mail server (data-progress="Sending…"): on submit
// the button is disabled and says the words until the answer page loads. Without JavaScript the
// forms work the same, only without the words. No inline script: the CSP forbids it.
"use strict";
document.querySelectorAll("form[data-progress]").forEach(function (form) {
  form.addEventListener("submit", function () {
    var button = form.querySelector("button[type=submit]");
    if (!button) { return; }
    button.setAttribute("data-label", button.textContent);
    button.textContent = form.getAttribute("data-progress");
    button.setAttribute("aria-busy", "true");
    // Disabled after this event: disabling it now could leave it out of the form's data.
    window.setTimeout(function () { button.disabled = true; }, 0);
  });
});
// Back from the answer page (the browser's page cache), the form is usable again.
window.addEventListener("pageshow", function () {
  document.querySelectorAll("form[data-progress] button[data-label]").forEach(function (button) {
    button.textContent = button.getAttribute("data-label");
    button.removeAttribute("data-label");
    button.removeAttribute("aria-busy");
    button.disabled = false;
  });
});
