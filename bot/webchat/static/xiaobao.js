// 小保 web chat: one <script src=".../widget/xiaobao.js" data-socket-url="..." data-customer-token="..."> tag.
// Talks to Rasa's socket.io channel with session persistence. Shopper and bot text is inserted
// with textContent only, never as HTML.
(function () {
  "use strict";
  const script = document.currentScript;
  const base = script.src.replace(/xiaobao\.js(\?.*)?$/, "");
  const appOrigin = new URL(script.src).origin;
  const socketUrl = script.dataset.socketUrl;
  const customerToken = script.dataset.customerToken || "";
  const T = {
    open: "在线客服", title: "小保 · 智能客服", close: "关闭", large: "大字", menu: "菜单", send: "发送", photo: "图片",
    input: "输入您的问题", log: "聊天记录", typing: "小保正在输入…", agent: "客服", bot: "小保", me: "我",
    tooBig: "图片不能超过5MB", badType: "只支持 JPG、PNG、WebP 图片", offline: "网络已断开，正在重连…",
    photoAlt: "您发送的图片", welcome: "您好，我是小保，您的购物售后助手。请直接输入问题，或点选下面的服务：",
    guess: "猜你想问：", rightsIntro: "您想了解哪方面的权益？", ticketAsk: "请输入工单号（T 开头，例如 T2026120300001）：",
    ticketInput: "输入工单号", ticketSay: "查一下工单 ",
    queued: (s) => "排队中（第" + s.position + "位）" + (s.eta_min ? "，预计" + s.eta_min + "分钟" : ""),
    claimed: (s) => "客服「" + (s.agent_name || "人工客服") + "」已接入",
    ended: () => "人工服务已结束", agentTyping: (name) => "客服「" + (name || "人工客服") + "」正在输入…",
    ticket: "工单 ", order: "订单 ", qty: "数量 ", more: "等", items: "件商品",
    survey: "问题是否解决？", yes: "是", no: "否", stars: "满意度评分", star: (n) => n + "星", comment: "补充说明（选填）",
    submit: "提交评价", thanks: "已提交，谢谢您的评价",
  };
  const MENU = [
    { title: "查物流", payload: "/order_status" }, { title: "退换货", payload: "/request_return" },
    { title: "维权咨询", local: "rights" }, { title: "转人工", payload: "/request_human" }, { title: "查工单", local: "ticket" },
  ];
  const MAX_IMAGE = 5 * 1024 * 1024;
  const IMAGE_TYPES = ["image/jpeg", "image/png", "image/webp"];
  const BOT_REPLY_TIMEOUT_MS = 10000;
  const TYPING_IDLE_MS = 3000;
  const PRESENCE_MS = 20000;
  // The session is issued by the server, signed (`<id>.<signature>`), in `session_confirm`: the
  // signature is the secret that lets this browser, and nobody else, resume it and read its history.
  const storageKey = "xiaobao.session";
  // Per tab: open or not, and how far above the latest message the shopper was reading (measured
  // from the bottom, which a reload renders the same; the local welcome at the top is not kept).
  const viewKey = "xiaobao.view";
  let sessionId = localStorage.getItem(storageKey) || "";
  let handoff = null;  // the last handoff_status payload: while queued/claimed a person answers
  let home = { popular: [], rights: [] };
  let awaitingTicket = false;

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  document.head.appendChild(el("link", { rel: "stylesheet", href: base + "xiaobao.css" }));
  const launcher = el("button", { class: "xb-launcher", "aria-haspopup": "dialog", "aria-expanded": "false" }, "💬 " + T.open);
  const panel = el("section", { class: "xb-panel", role: "dialog", "aria-label": T.title, hidden: "" });
  const head = el("div", { class: "xb-head" });
  const menuButton = el("button", { type: "button" }, T.menu);
  const large = el("button", { type: "button", "aria-pressed": "false" }, T.large);
  const close = el("button", { type: "button", class: "xb-close", "aria-label": T.close }, "✕");
  head.append(el("h2", {}, T.title), menuButton, large, close);
  const status = el("div", { class: "xb-status", role: "status", hidden: "" });
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
  panel.append(head, status, log, typing, error, form);
  document.body.append(launcher, panel);

  // --- Open, close, 大字, and the tab's view (restored after a reload) ---------------------------
  function view() {
    try { return JSON.parse(sessionStorage.getItem(viewKey)) || {}; } catch (e) { return {}; }
  }
  function saveView() {
    const saved = view();
    saved.open = !panel.hidden;
    if (saved.open) {  // a hidden log has no scroll position: keep the last one seen
      saved.fromBottom = log.scrollHeight - log.scrollTop;
      saved.atBottom = saved.fromBottom - log.clientHeight < 40;
    }
    sessionStorage.setItem(viewKey, JSON.stringify(saved));
  }
  function restoreScroll() {
    const saved = view();
    log.scrollTop = saved.atBottom === false ? log.scrollHeight - saved.fromBottom : log.scrollHeight;
  }
  function setOpen(open) {
    saveView();
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", String(open));
    if (open) { restoreScroll(); input.focus(); } else launcher.focus();
    saveView();
  }
  launcher.onclick = () => setOpen(panel.hidden);
  close.onclick = () => setOpen(false);
  panel.addEventListener("keydown", (event) => { if (event.key === "Escape") setOpen(false); });
  log.addEventListener("scroll", () => { if (!panel.hidden) saveView(); }, { passive: true });
  window.addEventListener("pagehide", () => { if (!panel.hidden) saveView(); });
  large.onclick = () => {
    const on = panel.classList.toggle("xb-large");
    large.setAttribute("aria-pressed", String(on));
    localStorage.setItem("xiaobao.large", on ? "1" : "");
  };
  if (localStorage.getItem("xiaobao.large")) { panel.classList.add("xb-large"); large.setAttribute("aria-pressed", "true"); }

  // --- Messages ----------------------------------------------------------------------------------
  function timeLabel(at) {
    const when = new Date(at * 1000);
    const pad = (n) => String(n).padStart(2, "0");
    const hhmm = pad(when.getHours()) + ":" + pad(when.getMinutes());
    const today = new Date();
    if (when.toDateString() === today.toDateString()) return hhmm;
    const day = (when.getMonth() + 1) + "月" + when.getDate() + "日 ";
    return (when.getFullYear() === today.getFullYear() ? "" : when.getFullYear() + "年") + day + hhmm;
  }

  function scrollToEnd() { log.scrollTop = log.scrollHeight; }

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

  // Only the newest choices can be tapped: older ones stay visible, greyed out, so a menu never
  // comes back without its options and a stale 「确认提交」 is never sent again. The widget's own
  // home menu (.xb-menu) asks nothing and stays live.
  function retireChoices() {
    for (const node of log.querySelectorAll(".xb-choice:not(.xb-stale):not(.xb-menu)")) node.classList.add("xb-stale");
    applyLock();
  }
  function applyLock() {
    const locked = personAnswers();
    for (const button of log.querySelectorAll(".xb-choice button")) {
      const stale = button.closest(".xb-choice").classList.contains("xb-stale");
      const off = stale || (locked && !button.closest(".xb-survey"));
      button.disabled = off;
      button.setAttribute("aria-disabled", String(off));
    }
  }

  function choose(option) {
    input.focus();  // the tapped button is disabled: focus stays in the panel, so Esc still closes
    if (option.local === "rights") return localBot(T.rightsIntro, home.rights);
    if (option.local === "ticket") return askTicket();
    say(option.payload, option.title);
  }

  function buttonBox(buttons, menu) {
    const box = el("div", { class: "xb-buttons xb-choice" + (menu ? " xb-menu" : "") });
    for (const b of buttons) {
      const button = el("button", { type: "button" }, b.title);
      button.dataset.payload = b.payload || "";
      button.onclick = () => { button.classList.add("xb-chosen"); choose(b); };
      box.appendChild(button);
    }
    return box;
  }

  function orderCards(custom) {
    const box = el("div", { class: "xb-orders xb-choice" });
    for (const order of custom.orders || []) {
      const items = order.items || [];
      const first = items[0] || {};
      const count = items.reduce((n, i) => n + (Number(i.quantity) || 1), 0);
      const card = el("button", { type: "button", class: "xb-order" });
      const picture = el("img", { src: base + "products/" + encodeURIComponent(first.sku || "generic") + ".svg", alt: "", width: "56", height: "56" });
      picture.onerror = () => { picture.onerror = null; picture.src = base + "products/generic.svg"; };
      const text = el("span", { class: "xb-order-text" });
      const name = first.name + (items.length > 1 ? " " + T.more + items.length + T.items : "");
      text.append(el("span", { class: "xb-order-name" }, name),
        el("span", { class: "xb-order-line" }, "¥" + Number(order.total || first.price || 0).toFixed(2) + " · " + T.qty + count),
        el("span", { class: "xb-order-line" }, (order.status_label || "") + " · " + (order.created_at || "")),
        el("span", { class: "xb-order-id" }, T.order + order.order_id));
      card.append(picture, text);
      card.onclick = () => { card.classList.add("xb-chosen"); choose({ payload: order.payload, title: T.order + order.order_id }); };
      box.appendChild(card);
    }
    return box;
  }

  function survey(custom) {
    const box = el("div", { class: "xb-survey xb-choice", role: "group", "aria-label": T.survey });
    const answer = { resolved: null, csat: null };
    function toggleRow(label, options, key) {
      const row = el("div", { class: "xb-survey-row", role: "group", "aria-label": label });
      row.appendChild(el("span", { class: "xb-survey-label" }, label));
      for (const [title, value] of options) {
        const button = el("button", { type: "button", "aria-pressed": "false" }, title);
        button.onclick = () => {
          answer[key] = value;
          for (const other of row.querySelectorAll("button")) other.setAttribute("aria-pressed", String(other === button));
        };
        row.appendChild(button);
      }
      return row;
    }
    const comment = el("textarea", { "aria-label": T.comment, placeholder: T.comment, rows: "2", maxlength: "200" });
    const submit = el("button", { type: "button", class: "xb-survey-submit" }, T.submit);
    submit.onclick = () => {
      const rating = { csat: answer.csat, resolved: answer.resolved, comment: comment.value.trim() };
      if (rating.csat === null) rating.csat = undefined;
      say("/rate" + JSON.stringify(rating), rateLine(rating));
      box.replaceChildren(el("div", { class: "xb-note" }, T.thanks));
    };
    box.append(toggleRow(T.survey, [[T.yes, true], [T.no, false]], "resolved"),
      toggleRow(T.stars, [1, 2, 3, 4, 5].map((n) => [T.star(n), n]), "csat"), comment, submit);
    return box;
  }

  function rateLine(rating) {  // as bot/transcript.describe_payload reads it back after a reload
    const parts = [];
    if (rating.resolved !== null) parts.push(rating.resolved ? "问题已解决" : "问题未解决");
    if (rating.csat) parts.push("评分：" + rating.csat + "分");
    if (rating.comment) parts.push("评价：" + rating.comment);
    return parts.join("，") || "评分";
  }

  function whoOf(message) {
    if (message.from === "user") return T.me;
    if (message.from === "agent") return message.agent_name ? T.agent + "「" + message.agent_name + "」" : T.agent;
    return T.bot;
  }

  function addMessage(message) {
    const from = message.from || (String(message.text || "").startsWith("👩‍💼") ? "agent" : "bot");
    const custom = message.custom || {};
    if (custom.type === "handoff_status") setHandoff(custom);
    const row = el("div", { class: "xb-msg xb-" + (from === "system" ? "bot" : from) });
    const meta = el("div", { class: "xb-who" }, whoOf({ ...message, from: from }));
    meta.appendChild(el("span", { class: "xb-time" }, timeLabel(message.at || Date.now() / 1000)));
    row.appendChild(meta);
    if (message.text) row.appendChild(el("div", { class: "xb-bubble" }, message.text));
    if (custom.type === "handoff_status" && !message.text) row.appendChild(el("div", { class: "xb-note" }, handoffText(custom)));
    for (const url of message.photos || []) {
      const link = el("a", { href: url, target: "_blank", rel: "noopener", class: "xb-photo" });
      const thumbnail = el("img", { src: url, alt: T.photoAlt });
      thumbnail.onload = () => { if (!panel.hidden && view().atBottom !== false) scrollToEnd(); };
      link.appendChild(thumbnail);
      row.appendChild(link);
    }
    if (custom.type === "rights_answer") row.appendChild(citationCard(custom));
    let buttons = message.buttons || message.quick_replies || [];
    if (custom.type === "order_cards") {
      // The bot sends the same choices as text buttons for channels without cards (REST, WeChat):
      // here the cards stand for them, in this message (history) or the one just before (live).
      const carded = new Set((custom.orders || []).map((o) => o.payload));
      buttons = buttons.filter((b) => !carded.has(b.payload));
      const previous = log.lastElementChild;
      for (const button of previous ? previous.querySelectorAll(".xb-buttons button") : []) {
        if (carded.has(button.dataset.payload)) button.remove();
      }
      for (const box of previous ? previous.querySelectorAll(".xb-buttons:empty") : []) box.remove();
      row.appendChild(orderCards(custom));
    }
    if (custom.type === "survey") row.appendChild(survey(custom));
    if (buttons.length) row.appendChild(buttonBox(buttons));
    if (row.childElementCount > 1) log.appendChild(row);
    applyLock();
    return row;
  }

  function localBot(text, buttons) {
    const row = addMessage({ from: "bot", text: text });
    if (buttons && buttons.length) row.appendChild(buttonBox(buttons, true));
    applyLock();
    scrollToEnd();
    return row;
  }

  function welcome() {
    const row = localBot(T.welcome, MENU);
    const guess = el("div", { class: "xb-guess" });
    row.appendChild(guess);
    const fill = () => {
      if (!home.popular.length || guess.childElementCount) return;
      guess.append(el("div", { class: "xb-guess-title" }, T.guess), buttonBox(home.popular, true));
      applyLock();
    };
    homeReady.then(fill);
  }

  function askTicket() {
    localBot(T.ticketAsk);
    awaitingTicket = true;
    input.placeholder = T.ticketInput;
    input.focus();
  }

  // --- Handoff: the status bar and who is typing -----------------------------------------------
  function setHandoff(custom) {
    handoff = custom;
    const text = handoffText(custom);
    status.hidden = !text;
    status.className = "xb-status xb-" + custom.state;
    status.textContent = text + (custom.ticket_id ? " · " + T.ticket + custom.ticket_id : "");
    botTyping(false);  // queued or claimed: a person answers; ended: nothing is pending
    if (custom.state === "ended") agentTyping(false);
    applyLock();
  }
  function handoffText(custom) {
    return ["queued", "claimed", "ended"].includes(custom.state) ? T[custom.state](custom) : "";
  }

  let botTimer = 0;
  let agentTimer = 0;
  function personAnswers() { return Boolean(handoff) && (handoff.state === "queued" || handoff.state === "claimed"); }
  function showTyping() {
    typing.textContent = agentTimer ? T.agentTyping(typing.dataset.agent) : botTimer ? T.typing : "";
  }
  function botTyping(on) {
    clearTimeout(botTimer);
    botTimer = on && !personAnswers() ? setTimeout(() => { botTimer = 0; showTyping(); }, BOT_REPLY_TIMEOUT_MS) : 0;
    showTyping();
  }
  function agentTyping(on, name) {  // a lost `false` (the agent closed the tab) must not leave it on
    clearTimeout(agentTimer);
    typing.dataset.agent = name || "";
    agentTimer = on ? setTimeout(() => { agentTimer = 0; showTyping(); }, 2 * TYPING_IDLE_MS + 2000) : 0;
    showTyping();
  }

  // --- Socket.io --------------------------------------------------------------------------------
  let socket;
  function connect() {
    socket = io(socketUrl, { transports: ["websocket"], reconnection: true });
    socket.on("connect", () => { error.textContent = ""; socket.emit("session_request", { session_id: sessionId || null }); });
    socket.on("session_confirm", (issued) => {
      if (typeof issued === "string" && issued !== sessionId) { sessionId = issued; localStorage.setItem(storageKey, issued); }
    });
    socket.on("disconnect", () => { error.textContent = T.offline; });
    socket.on("bot_uttered", (message) => {
      const custom = message.custom || (message.attachment && message.attachment.payload);
      botTyping(false);
      if (String(message.text || "").startsWith("👩‍💼")) agentTyping(false);
      addMessage({ text: message.text, buttons: message.quick_replies || message.buttons, custom: custom, at: Date.now() / 1000 });
      scrollToEnd();
    });
    socket.on("agent_typing", (data) => { if (data && typeof data === "object") agentTyping(data.typing === true, data.agent_name); });
    setInterval(() => { if (socket.connected && sessionId) socket.emit("presence", { session_id: sessionId }); }, PRESENCE_MS);
  }
  const loader = el("script", { src: base + "vendor/socket.io.min.js" });
  loader.onload = connect;
  document.head.appendChild(loader);

  let typingSent = 0;
  let idleTimer = 0;
  function userTyping(on) {
    clearTimeout(idleTimer);
    if (!socket || !sessionId) return;
    if (on) {
      idleTimer = setTimeout(() => userTyping(false), TYPING_IDLE_MS);
      if (Date.now() - typingSent < TYPING_IDLE_MS - 500) return;  // throttled: one `true` every few seconds
      typingSent = Date.now();
    } else {
      if (!typingSent) return;
      typingSent = 0;
    }
    socket.emit("user_typing", { session_id: sessionId, typing: on });
  }
  input.addEventListener("input", () => userTyping(input.value.trim() !== ""));

  function emit(text, attachments) {
    const customData = {};
    if (customerToken) customData.customer_token = customerToken;
    if (attachments) customData.attachments = attachments;
    userTyping(false);
    // socket.io buffers emits while disconnected and sends them once, after reconnecting.
    socket.emit("user_uttered", { message: text, session_id: sessionId, customData: customData });
    botTyping(true);
  }

  function say(text, shown, photos) {
    retireChoices();
    addMessage({ from: "user", text: shown === undefined ? text : shown, photos: photos, at: Date.now() / 1000 });
    scrollToEnd();
    emit(text, photos);
  }

  form.onsubmit = (event) => {
    event.preventDefault();
    let text = input.value.trim();
    if (!text) return;
    input.value = "";
    if (awaitingTicket) {
      awaitingTicket = false;
      input.placeholder = T.input;
      if (!text.includes("工单")) text = T.ticketSay + text;
    }
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
    error.textContent = "";
    say("", "", [data.url]);
  };

  // --- Start: the home menu, the history (or the welcome), the view ----------------------------
  const homeReady = fetch(appOrigin + "/chat/home")
    .then((response) => response.ok ? response.json() : home)
    .then((data) => { home = { popular: data.popular || [], rights: data.rights || [] }; })
    .catch(() => {});
  menuButton.onclick = () => { welcome(); input.focus(); };

  function restore(messages) {
    // The choices of the bot's last turns are live only when the shopper has not answered since.
    let lastUser = -1;
    messages.forEach((m, i) => { if (m.from === "user") lastUser = i; });
    messages.forEach((m, i) => {
      const row = addMessage(m);
      if (i < lastUser) for (const box of row.querySelectorAll(".xb-choice")) box.classList.add("xb-stale");
    });
    applyLock();
    if (!messages.length) welcome();
    restoreScroll();
  }
  const history = sessionId
    ? fetch(appOrigin + "/chat/history?session_id=" + encodeURIComponent(sessionId))
      .then((response) => response.ok ? response.json() : { messages: [] })
      .catch(() => ({ messages: [] }))
    : Promise.resolve({ messages: [] });
  history.then((data) => {
    restore(data.messages || []);
    if (view().open) setOpen(true);
  });
})();
