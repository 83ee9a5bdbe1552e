// 小保 web chat: one <script src=".../widget/xiaobao.js" data-socket-url="..." data-customer-token="..."> tag.
// Talks to Rasa's socket.io channel with session persistence; shopper and bot text is inserted
// with textContent only.
(function () {
  "use strict";
  const script = document.currentScript;
  const base = script.src.replace(/xiaobao\.js(\?.*)?$/, "");
  const appOrigin = new URL(script.src).origin;
  const socketUrl = script.dataset.socketUrl;
  const customerToken = script.dataset.customerToken || "";
  const T = {
    open: "在线客服", title: "小保 · 智能客服", close: "关闭", large: "大字", send: "发送", photo: "图片",
    input: "输入您的问题", log: "聊天记录", typing: "小保正在输入…", agent: "人工客服", bot: "小保", me: "我",
    tooBig: "图片不能超过5MB", badType: "只支持 JPG、PNG、WebP 图片", offline: "网络已断开，正在重连…",
    photoSent: "[图片]",
  };
  const MAX_IMAGE = 5 * 1024 * 1024;
  const IMAGE_TYPES = ["image/jpeg", "image/png", "image/webp"];
  // The session is issued by the server, signed (`<id>.<signature>`), in `session_confirm`: the
  // signature is the secret that lets this browser, and nobody else, resume it and read its history.
  const storageKey = "xiaobao.session";
  let sessionId = localStorage.getItem(storageKey) || "";

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  const css = el("link", { rel: "stylesheet", href: base + "xiaobao.css" });
  document.head.appendChild(css);
  const launcher = el("button", { class: "xb-launcher", "aria-haspopup": "dialog", "aria-expanded": "false" }, "💬 " + T.open);
  const panel = el("section", { class: "xb-panel", role: "dialog", "aria-label": T.title, hidden: "" });
  const head = el("div", { class: "xb-head" });
  const large = el("button", { "aria-pressed": "false" }, T.large);
  const close = el("button", { "aria-label": T.close }, "✕");
  head.append(el("h2", {}, T.title), large, close);
  const log = el("div", { class: "xb-log", role: "log", "aria-live": "polite", "aria-label": T.log, tabindex: "0" });
  const typing = el("div", { class: "xb-typing", "aria-live": "polite" });
  const error = el("div", { class: "xb-error", role: "alert" });
  const form = el("form", { class: "xb-form" });
  const input = el("textarea", { "aria-label": T.input, placeholder: T.input, rows: "1" });
  const fileLabel = el("label", { class: "xb-file" }, T.photo);
  const file = el("input", { type: "file", accept: IMAGE_TYPES.join(","), "aria-label": T.photo });
  fileLabel.appendChild(file);
  const send = el("button", { type: "submit" }, T.send);
  form.append(input, fileLabel, send);
  panel.append(head, log, typing, error, form);
  document.body.append(launcher, panel);

  function setOpen(open) {
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", String(open));
    if (open) input.focus(); else launcher.focus();
  }
  launcher.onclick = () => setOpen(panel.hidden);
  close.onclick = () => setOpen(false);
  panel.addEventListener("keydown", (event) => { if (event.key === "Escape") setOpen(false); });
  large.onclick = () => {
    const on = panel.classList.toggle("xb-large");
    large.setAttribute("aria-pressed", String(on));
    localStorage.setItem("xiaobao.large", on ? "1" : "");
  };
  if (localStorage.getItem("xiaobao.large")) { panel.classList.add("xb-large"); large.setAttribute("aria-pressed", "true"); }

  function citationCard(custom) {
    const box = el("div", { class: "xb-cite" });
    for (const c of custom.citations || []) {
      const details = el("details");
      const label = String(c.text || "").split(" ")[0] || "第" + c.article + "条";  // the statute's own 第二十五条
      details.append(el("summary", {}, "《" + c.law + "》" + label), el("p", {}, c.text));
      box.appendChild(details);
    }
    return box;
  }

  function addMessage(message, options) {
    const from = message.from || (String(message.text || "").startsWith("👩‍💼") ? "agent" : "bot");
    const row = el("div", { class: "xb-msg xb-" + from });
    row.appendChild(el("div", { class: "xb-who" }, from === "user" ? T.me : from === "agent" ? T.agent : T.bot));
    if (message.text) row.appendChild(el("div", { class: "xb-bubble" }, message.text));
    if (message.custom && message.custom.type === "rights_answer") row.appendChild(citationCard(message.custom));
    const buttons = message.buttons || message.quick_replies || [];
    if (buttons.length && !(options && options.history)) {
      const box = el("div", { class: "xb-buttons" });
      for (const b of buttons) {
        const button = el("button", { type: "button" }, b.title);
        button.onclick = () => { box.remove(); say(b.payload, b.title); };
        box.appendChild(button);
      }
      row.appendChild(box);
    }
    if (row.childElementCount > 1) log.appendChild(row);
    log.scrollTop = log.scrollHeight;
  }

  let socket;
  function connect() {
    socket = io(socketUrl, { transports: ["websocket"], reconnection: true });
    socket.on("connect", () => { error.textContent = ""; socket.emit("session_request", { session_id: sessionId || null }); });
    socket.on("session_confirm", (issued) => {
      if (typeof issued === "string" && issued !== sessionId) { sessionId = issued; localStorage.setItem(storageKey, issued); }
    });
    socket.on("disconnect", () => { error.textContent = T.offline; });
    socket.on("bot_uttered", (message) => {
      typing.textContent = "";
      addMessage({ text: message.text, buttons: message.quick_replies || message.buttons, custom: message.custom || (message.attachment && message.attachment.payload) });
    });
  }
  const loader = el("script", { src: base + "vendor/socket.io.min.js" });
  loader.onload = connect;
  document.head.appendChild(loader);

  function emit(text, attachments) {
    const customData = {};
    if (customerToken) customData.customer_token = customerToken;
    if (attachments) customData.attachments = attachments;
    // socket.io buffers emits while disconnected and sends them once, after reconnecting.
    socket.emit("user_uttered", { message: text, session_id: sessionId, customData: customData });
    typing.textContent = T.typing;
  }

  function say(text, shown) {
    addMessage({ from: "user", text: shown || text });
    emit(text);
  }

  form.onsubmit = (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    say(text);
  };
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
  });

  file.onchange = async () => {
    const picked = file.files[0];
    file.value = "";
    if (!picked) return;
    if (!IMAGE_TYPES.includes(picked.type)) { error.textContent = T.badType; return; }
    if (picked.size > MAX_IMAGE) { error.textContent = T.tooBig; return; }
    const body = new FormData();
    body.append("image", picked);
    const response = await fetch(appOrigin + "/chat/upload?session_id=" + encodeURIComponent(sessionId), { method: "POST", body: body });
    const data = await response.json();
    if (!response.ok) { error.textContent = data.error; return; }
    addMessage({ from: "user", text: T.photoSent });
    emit("", [data.url]);
  };

  if (sessionId) fetch(appOrigin + "/chat/history?session_id=" + encodeURIComponent(sessionId))
    .then((response) => response.ok ? response.json() : { messages: [] })
    .then((data) => { for (const m of data.messages) addMessage(m, { history: true }); })
    .catch(() => {});
})();
