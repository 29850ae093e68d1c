// The portal's few behaviours beyond htmx: copying a pull command, and saying in the
// page's live region what a refused action was told (htmx swaps nothing on an error).
(function () {
  function say(message, isError) {
    var status = document.getElementById("status");
    if (!status) return;
    status.hidden = false;
    status.textContent = message;
    status.classList.toggle("error", !!isError);
    status.setAttribute("role", isError ? "alert" : "status");
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy");
    if (!button) return;
    var text = button.getAttribute("data-copy");
    var done = function () { say("Copied: " + text, false); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { say(text, false); });
    } else {
      say(text, false);
    }
  });
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    var text = xhr.status === 403 ? "Not allowed: " + (xhr.responseText || "you may not do this")
      : "Failed (" + xhr.status + "): " + (xhr.responseText || xhr.statusText);
    say(text, true);
  });
})();
