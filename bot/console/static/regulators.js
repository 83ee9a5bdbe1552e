// Dossier and monthly report pages: the print button, and recording the complainant's consent.
// No inline script: the console's CSP is script-src 'self'.
(function () {
  "use strict";
  for (const button of document.querySelectorAll("[data-print]")) {
    button.addEventListener("click", () => window.print());
  }
  const form = document.getElementById("consent-form");
  if (!form) return;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const status = document.getElementById("consent-status");
  async function send(body) {
    const response = await fetch(form.dataset.url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || response.statusText);
    location.reload();
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send({ given: true, statement: document.getElementById("consent-statement").value })
      .catch((error) => { status.textContent = "失败：" + error.message; });
  });
  const withdraw = document.getElementById("consent-withdraw");
  if (withdraw) {
    withdraw.addEventListener("click", () => send({ given: false })
      .catch((error) => { status.textContent = "失败：" + error.message; }));
  }
})();
