// 小保 console pages: what every page script shares. Loaded before the page's own script.
(function () {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;

  // Shopper text is only ever inserted with textContent, never as HTML.
  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  // A POST with the session's CSRF token. A failure throws an Error whose message is Chinese:
  // errorText(data, status) of the page (the server's JSON message, else one by HTTP status).
  async function post(path, body, errorText) {
    let response;
    try {
      response = await fetch(path, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(body || {}),
      });
    } catch (error) {
      throw new Error("网络连接失败，请检查网络后重试");
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(errorText(data, response.status));
    return data;
  }

  // 退出登录 in the nav: the session ends on the server (a POST with the CSRF token), then the login page.
  const logout = document.getElementById("logout");
  if (logout) {
    logout.addEventListener("click", async () => {
      logout.disabled = true;
      try {
        await post("/logout", {}, (data, status) => (typeof data.error === "string" && data.error) || "退出失败（" + status + "）");
        location.assign("/login");
      } catch (error) {
        logout.disabled = false;
        logout.textContent = "退出登录（" + error.message + "）";
      }
    });
  }

  window.xiaobaoConsole = Object.freeze({ csrf, el, post });
})();
