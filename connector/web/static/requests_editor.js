/* The delivery-request editor's preview without leaving the page. Without script the preview
   button posts the form and the page comes back with the preview; with it, the same form is
   posted to the preview endpoint, which answers the preview's HTML (escaped by the server). */
(function () {
  "use strict";
  var button = document.getElementById("preview-button");
  var form = document.getElementById("request-form");
  var region = document.getElementById("preview");
  if (!button || !form || !region || !window.fetch) {
    return;
  }
  button.addEventListener("click", function (event) {
    event.preventDefault();
    var label = button.textContent;
    button.disabled = true;
    button.textContent = "Rendering…";
    region.setAttribute("aria-busy", "true");
    fetch(button.dataset.previewUrl, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { "Accept": "text/html" }
    })
      .then(function (response) {
        if (response.status !== 200 && response.status !== 422) {
          throw new Error("the preview answered " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        region.innerHTML = html;
      })
      .catch(function (error) {
        var message = document.createElement("p");
        message.className = "error";
        message.setAttribute("role", "alert");
        message.textContent = "Cannot preview now (" + error.message + "). Reload the page and try again.";
        region.replaceChildren(message);
      })
      .finally(function () {
        button.disabled = false;
        button.textContent = label;
        region.removeAttribute("aria-busy");
      });
  });
})();
