// 小保 agent console. Shopper text is only ever inserted with textContent, never as HTML.
(function () {
  "use strict";
  const page = document.currentScript.dataset.page;
  const { el } = window.xiaobaoConsole;  // static/common.js

  // Chinese labels for the machine values the API sends, used when the server sent no label.
  const LABELS = {
    waiting: "排队中", claimed: "已接入", resolved: "已解决",
    urgent: "紧急", high: "高", normal: "普通",
    unpaid: "待付款", paid: "已付款，待发货", shipped: "运输中", delivered: "已签收",
  };
  function label(value, given) { return given || LABELS[value] || value || "—"; }

  // Errors are shown in Chinese: the server's JSON message, else one chosen by the HTTP status
  // (never the browser's English status text).
  function failure(status) {
    if (status === 401) return "登录已失效，请重新登录";
    if (status === 403) return "页面已过期或没有权限，请刷新后重试";
    if (status === 404) return "找不到这个工单";
    if (status === 409) return "工单状态已变化，请刷新后再试";
    if (status === 413) return "内容太长";
    if (status >= 500) return "服务器出错（" + status + "），请稍后再试";
    return "操作失败（" + status + "）";
  }

  function errorText(data, status) { return (typeof data.error === "string" && data.error) || failure(status); }
  function post(path, body) { return window.xiaobaoConsole.post(path, body, errorText); }

  function minutes(seconds) { return Math.floor(Math.abs(seconds) / 60) + "分" + (Math.abs(seconds) % 60) + "秒"; }

  function ticketCard(t, elapsed) {
    const card = el("div", null, "card " + t.priority);
    card.dataset.ticketId = t.id;
    const link = el("a", t.id + " · " + t.category_label + " · " + label(t.priority, t.priority_label));
    link.href = "/tickets/" + encodeURIComponent(t.id);
    card.append(link, el("div", t.summary));
    if (t.callback) card.append(el("div", "回电号码：" + t.callback, "callback"));
    const remaining = t.sla_remaining_s - elapsed;
    const sla = el("div", remaining >= 0 ? "响应时限剩余 " + minutes(remaining) : "已超时 " + minutes(remaining));
    if (remaining < 0) sla.className = "overdue";
    card.append(el("div", "已等待 " + minutes(t.waiting_s + elapsed)), sla);
    return card;
  }

  // -- notifications: new and overdue tickets ------------------------------------------------
  // A short beep (WebAudio, no file), 「(N) 新工单 · 小保客服台」 in the tab title until the agent
  // next uses the page, and a desktop notification once the agent allowed them (asked on a click).
  const notifier = (function () {
    const baseTitle = document.title;
    let known = null;  // ids of waiting tickets already announced (or there when the page opened)
    const overdueKnown = new Set();
    let unseen = 0;
    let audio = null;

    function audioContext() {
      const Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) return null;
      if (!audio) audio = new Context();
      if (audio.state === "suspended") audio.resume().catch(() => {});
      return audio;
    }

    function beep() {
      try {
        const ctx = audioContext();
        if (!ctx) return;
        const osc = ctx.createOscillator(), gain = ctx.createGain();
        osc.type = "sine"; osc.frequency.value = 880; gain.gain.value = 0.08;
        osc.connect(gain); gain.connect(ctx.destination);
        osc.start(); osc.stop(ctx.currentTime + 0.18);
      } catch (error) { /* no sound on this browser: the title and notification still tell */ }
    }

    function showTitle() { document.title = unseen ? "(" + unseen + ") 新工单 · 小保客服台" : baseTitle; }

    function desktop(title, body, ticketId) {
      if (!("Notification" in window) || Notification.permission !== "granted") return;
      try {
        const note = new Notification(title, { body: body, tag: ticketId });
        note.onclick = () => { window.focus(); location.assign("/tickets/" + encodeURIComponent(ticketId)); };
      } catch (error) { /* e.g. a browser that only allows notifications from a service worker */ }
    }

    function announce(title, t) {
      unseen += 1;
      showTitle();
      beep();
      desktop(title, t.category_label + " · " + t.summary, t.id);
    }

    // The agent used the page: they have seen it. The first gesture also unlocks the sound.
    function seen() { if (unseen) { unseen = 0; showTitle(); } audioContext(); }
    document.addEventListener("pointerdown", seen, true);
    document.addEventListener("keydown", seen, true);

    const ask = document.getElementById("enable-notifications");
    function showAsk() { if (ask) ask.hidden = !("Notification" in window) || Notification.permission !== "default"; }
    if (ask) {
      ask.addEventListener("click", () => { Notification.requestPermission().then(showAsk, showAsk); });
      showAsk();
    }

    function check(waiting, elapsed) {
      if (known === null) {  // what was there when the page opened is not news
        known = new Set(waiting.map((t) => t.id));
        waiting.forEach((t) => { if (t.sla_remaining_s - elapsed < 0) overdueKnown.add(t.id); });
        return;
      }
      for (const t of waiting) {
        if (!known.has(t.id)) { known.add(t.id); announce("新工单 " + t.id, t); }
        if (t.sla_remaining_s - elapsed < 0 && !overdueKnown.has(t.id)) {
          overdueKnown.add(t.id);
          announce("工单超时未接入 " + t.id, t);
        }
      }
    }
    return { check: check };
  })();

  // The server pushes the queue when a ticket changes; the countdowns tick here in between.
  let lastQueue = null;
  let receivedAt = 0;

  function renderQueue(snapshot) {
    if (snapshot) { lastQueue = snapshot; receivedAt = Date.now(); }
    if (!lastQueue) return;
    const elapsed = Math.floor((Date.now() - receivedAt) / 1000);
    notifier.check(lastQueue.waiting, elapsed);
    for (const [id, list] of [["waiting", lastQueue.waiting], ["mine", lastQueue.mine]]) {
      const box = document.getElementById(id);
      if (!box) continue;
      box.replaceChildren(...(list.length ? list.map((t) => ticketCard(t, elapsed)) : [el("p", "暂无")]));
    }
  }

  // -- the conversation ---------------------------------------------------------------------
  const viewer = document.getElementById("photo-viewer");
  let viewerOpener = null;

  function openViewer(url, name, opener) {
    const img = document.getElementById("photo-viewer-img");
    img.src = url; img.alt = name;
    viewerOpener = opener;
    viewer.showModal();
    document.getElementById("photo-viewer-close").focus();
  }

  if (viewer) {
    document.getElementById("photo-viewer-close").onclick = () => viewer.close();
    viewer.addEventListener("click", (event) => { if (event.target === viewer) viewer.close(); });  // the backdrop
    viewer.addEventListener("close", () => { if (viewerOpener) viewerOpener.focus(); });  // Esc closes natively
  }

  function photoButton(photo, name) {
    const button = el("button", null, "thumb-button");
    button.type = "button";
    const img = el("img");
    img.src = photo.thumbnail; img.alt = name + "（点击查看大图）"; img.loading = "lazy";
    button.append(img);
    button.onclick = () => openViewer(photo.url, name, button);
    return button;
  }

  function who(turn) {
    if (turn.from === "user") return "顾客";
    if (turn.from === "agent") return "人工客服 " + (turn.agent_name || turn.agent || "");
    if (turn.from === "system") return "系统消息";
    return "小保";
  }

  function turnRow(turn) {
    const row = el("div", null, "turn " + turn.from);
    const at = turn.at ? new Date(turn.at * 1000).toLocaleTimeString("zh-CN", { hour: "2-digit", minute: "2-digit" }) : "";
    row.append(el("div", who(turn) + (at ? " · " + at : ""), "who"));
    if (turn.text) {
      const bubble = el("div", null, "bubble");
      if (turn.tap) bubble.append(el("span", "点选", "tap-mark"));
      bubble.append(document.createTextNode(turn.text));
      row.append(bubble);
    }
    if (turn.photos && turn.photos.length) {
      const thumbs = el("div", null, "thumbs");
      turn.photos.forEach((p) => { if (p.url) thumbs.append(photoButton(p, "顾客照片" + (p.index + 1))); });
      row.append(thumbs);
    }
    if (turn.custom_line) row.append(el("div", null), el("div", turn.custom_line, "payload-line"));
    if (turn.buttons && turn.buttons.length) {
      const offered = el("div", null, "offered");
      offered.append(el("span", "提供的选项："));
      turn.buttons.forEach((b, i) => {
        if (i) offered.append(document.createTextNode(" / "));
        offered.append(el("span", b.title, "chip"));
      });
      row.append(offered);
    }
    if (turn.citations && turn.citations.length) row.append(el("div", "依据：" + turn.citations.join("、"), "cite"));
    return row;
  }

  let lastConversation = null;
  let ordersDigest = null;

  function renderConversation(view) {
    lastConversation = view;
    document.getElementById("transcript").replaceChildren(...view.transcript.map(turnRow));
    const t = view.ticket;
    document.getElementById("callback").replaceChildren(...(t.callback ? [el("p", "回电号码：" + t.callback, "callback")] : []));
    document.getElementById("ticket").replaceChildren(
      el("div", "状态：" + label(t.status, t.status_label) + (t.assignee ? "（" + (t.assignee_name || t.assignee) + "）" : "")),
      el("div", "类别：" + t.category_label + " · 优先级：" + label(t.priority, t.priority_label)),
      el("div", "顾客：" + (t.customer || "未登录") + " · 渠道：" + (t.channel_label || t.channel)),
      el("div", "订单：" + (t.order_id || "无")),
      el("div", "摘要：" + t.summary),
      ...(t.rating != null || t.survey_comment ? [el("div", "顾客评价：" + [
        t.rating != null ? t.rating + "分" : "",
        t.survey_resolved === true || t.survey_resolved === "true" ? "问题已解决" : t.survey_resolved === false || t.survey_resolved === "false" ? "问题未解决" : "",
        t.survey_comment ? "留言：" + t.survey_comment : ""].filter(Boolean).join("，"))] : []));
    document.getElementById("notes").replaceChildren(...(t.notes.length ? t.notes.map((n) => el("div", (n.agent_name || n.agent) + "：" + n.text)) : [el("p", "无")]));
    const digest = JSON.stringify(view.orders);
    if (digest !== ordersDigest) {  // a half-filled return form survives transcript updates
      ordersDigest = digest;
      document.getElementById("orders").replaceChildren(...(view.orders.length ? view.orders.map(orderBlock) : [el("p", "无")]));
    }
    renderEvidence(view.evidence);
    document.getElementById("returns").replaceChildren(...(view.returns.length ? view.returns.map((r) =>
      el("div", r.return_id + " · 订单 " + r.order_id + " · " + (r.kind_label || r.kind) + " · " + (r.status_label || r.status))) : [el("p", "无")]));
    document.getElementById("refunds").replaceChildren(...(view.refunds && view.refunds.length ? view.refunds.map((r) =>
      el("div", "¥" + Number(r.amount).toFixed(2) + (r.note ? " · " + r.note : "") + " · " + (r.agent_name || r.agent) + " · " + String(r.at).slice(0, 16).replace("T", " "))) : [el("p", "无")]));
  }

  function renderPresence(message) {
    const box = document.getElementById("presence");
    if (!box) return;
    const channel = lastConversation && lastConversation.ticket.channel;
    box.className = "presence" + (message.online ? " online" : "");
    document.getElementById("presence-text").textContent =
      message.typing ? "顾客正在输入…" : message.online ? "顾客在线" :
      channel && channel !== "socketio" ? "该渠道不显示顾客是否在线" : "顾客已离开聊天页面";
  }

  // The agent opens a return for the shopper on one of their orders (the server applies the same
  // rules as the bot), and sees the result right there.
  let formCount = 0;
  function orderBlock(o) {
    const box = el("div", null, "order");
    box.append(el("div", o.order_id + " · " + label(o.status, o.status_label) + " · " + o.items.map((i) => i.name).join("、")));
    const details = el("details", null, "order-action");
    details.append(el("summary", "为顾客申请售后"));
    const form = el("form");
    const n = ++formCount;
    const items = el("fieldset");
    items.append(el("legend", "商品"));
    o.items.forEach((item) => {
      const lab = el("label");
      const box = el("input"); box.type = "checkbox"; box.name = "item"; box.value = item.item_id;
      if (o.items.length === 1) box.checked = true;
      lab.append(box, document.createTextNode(" " + item.name + (item.price != null ? " ¥" + item.price : "")));
      items.append(lab, el("br"));
    });
    function select(id, text, options) {
      const p = el("p"), lab = el("label", text), s = el("select");
      lab.htmlFor = s.id = id;
      options.forEach(([value, name]) => { const opt = el("option", name); opt.value = value; s.append(opt); });
      p.append(lab, document.createTextNode(" "), s);
      return [p, s];
    }
    const [kindRow, kind] = select("return-kind-" + n, "类型", [["return", "退货"], ["exchange", "换货"], ["refund_only", "仅退款"]]);
    const [reasonRow, reason] = select("return-reason-" + n, "原因", Object.entries(reasons));
    const intactRow = el("p"), intactLabel = el("label"), intact = el("input");
    intact.type = "checkbox";
    intactLabel.append(intact, document.createTextNode(" 已与顾客确认商品完好（七天无理由需要）"));
    intactRow.append(intactLabel);
    const submit = el("button", "提交售后申请"); submit.type = "submit";
    form.append(items, kindRow, reasonRow, intactRow, el("p"));
    form.lastChild.append(submit);
    form.onsubmit = async (event) => {
      event.preventDefault();
      const line = document.getElementById("order-status");
      const chosen = [...form.querySelectorAll('input[name="item"]:checked')].map((i) => i.value);
      if (!chosen.length) { line.className = "form-status error"; line.textContent = "请先勾选商品"; return; }
      submit.disabled = true;
      line.className = "form-status"; line.textContent = "提交中…";
      try {
        const result = await post(ticketPath("/returns"), { order_id: o.order_id, item_ids: chosen, kind: kind.value,
                                                             reason: reason.value, intact: intact.checked });
        line.className = "form-status ok"; line.textContent = result.message;
        details.open = false;
      } catch (error) {
        line.className = "form-status error"; line.textContent = "未能提交：" + error.message;
      } finally {
        submit.disabled = false;
      }
    };
    details.append(form);
    box.append(details);
    return box;
  }

  // The evidence pack collected at escalation: photos (thumbnails the console serves to logged-in
  // agents; a click opens the viewer), the order as it was then, and the knowledge-base answers given.
  function renderEvidence(evidence) {
    if (!evidence) return;
    const photos = evidence.photos.map((p) => {
      if (!p.available) return el("span", "照片" + (p.index + 1) + "（未保存在本机）", "cite");
      return photoButton(p, "证据照片" + (p.index + 1));
    });
    document.getElementById("evidence-photos").replaceChildren(...(photos.length ? photos : [el("p", "无")]));
    const o = evidence.order;
    document.getElementById("evidence-order").replaceChildren(...(o ? [
      el("div", o.order_id + " · " + label(o.status, o.status_label) + (o.freight_insurance ? " · 运费险" : "")),
      el("div", "商品：" + o.items.map((i) => i.name + " ×" + i.quantity + (i.price != null ? " ¥" + i.price : "")).join("、")),
      el("div", "下单：" + (o.created_at || "—") + " · 签收：" + (o.signed_at || "未签收")),
      el("div", "物流：" + ([o.carrier, o.tracking_no, o.latest_logistics].filter(Boolean).join(" · ") || "—")),
    ] : [el("p", "无")]));
    document.getElementById("evidence-answers").replaceChildren(...(evidence.kb_answers.length ? evidence.kb_answers.map((a) => {
      const row = el("div", null, "answer");
      row.append(el("div", a.title + (a.kind === "policy" ? "（店铺规则）" : "")));
      if (a.citations.length) row.append(el("div", "依据：" + a.citations.join("、"), "cite"));
      return row;
    }) : [el("p", "无")]));
  }

  function connect(onMessage, watch) {
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
    ws.onopen = () => { if (watch) ws.send(JSON.stringify({ watch: watch })); };
    ws.onmessage = (event) => onMessage(JSON.parse(event.data));
    ws.onclose = () => setTimeout(() => connect(onMessage, watch), 1500);  // reconnect after a drop
  }

  async function loadDashboard() {
    const box = document.getElementById("dashboard");
    if (!box) return;
    const response = await fetch("/api/dashboard", { credentials: "same-origin" }).catch(() => null);
    if (!response || !response.ok) { box.textContent = "概览暂时无法加载"; return; }
    const d = await response.json();
    const pct = (x) => (100 * x).toFixed(0) + "%";
    box.textContent = "会话 " + d.conversations + " · 自动解决率 " + pct(d.automation_rate) + " · 转人工率 " +
      pct(d.escalation_rate) + " · 等待中位数 " + (d.median_wait_s === null ? "—" : minutes(Math.round(d.median_wait_s))) +
      " · 满意度 " + (d.csat === null ? "—" : d.csat.toFixed(1));
  }

  setInterval(() => renderQueue(null), 1000);  // countdowns, and overdue notices, tick on every page

  if (page === "queue") {
    connect((message) => { if (message.type === "queue") renderQueue(message); });
    loadDashboard();
    setInterval(loadDashboard, 10000);
  }

  if (page === "search") {
    connect((message) => { if (message.type === "queue") renderQueue(message); });
  }

  const grid = document.querySelector("[data-ticket]");
  const ticketId = grid ? grid.dataset.ticket : null;
  const me = grid ? grid.dataset.agent : null;
  const reasons = grid ? JSON.parse(grid.dataset.reasons || "{}") : {};
  function ticketPath(path) { return "/api/tickets/" + encodeURIComponent(ticketId) + path; }

  if (page === "ticket") {
    const status = document.getElementById("status");
    const act = (path, body) => post(ticketPath(path), body)
      .then(() => { status.textContent = "已完成"; }).catch((error) => { status.textContent = "失败：" + error.message; });
    connect((message) => {
      if (message.type === "conversation") renderConversation(message);
      else if (message.type === "presence") renderPresence(message);
      else if (message.type === "queue") renderQueue(message);
    }, ticketId);
    document.getElementById("claim").onclick = () => act("/claim");
    document.getElementById("release").onclick = () => act("/release");
    document.getElementById("resolve").onclick = () => act("/resolve");

    // Transfers go to colleagues whose console is open now; the list is refreshed as they come and go.
    const transferTo = document.getElementById("transfer-to");
    async function loadOnline() {
      const response = await fetch("/api/agents/online", { credentials: "same-origin" }).catch(() => null);
      if (!response || !response.ok) return;
      const chosen = transferTo.value;
      const agents = (await response.json()).agents;
      const options = agents.map((a) => { const o = el("option", a.name + (a.name !== a.login ? "（" + a.login + "）" : "")); o.value = a.login; return o; });
      if (!options.length) { const none = el("option", "（暂无在线客服）"); none.value = ""; options.push(none); }
      transferTo.replaceChildren(...options);
      if (agents.some((a) => a.login === chosen)) transferTo.value = chosen;
    }
    loadOnline();
    setInterval(loadOnline, 10000);
    transferTo.addEventListener("focus", loadOnline);
    document.getElementById("transfer").onclick = () => {
      if (!transferTo.value) { status.textContent = "失败：现在没有其他在线客服可以转交"; return; }
      act("/transfer", { to: transferTo.value });
    };

    // The shopper sees 「客服正在输入」 while the agent types: at most one notice every 2 s, and
    // 「停止」 after 4 s without typing or when the reply is sent.
    const reply = document.getElementById("reply");
    let typingSentAt = 0, typingIdle = null;
    function mine() { const t = lastConversation && lastConversation.ticket; return t && t.status === "claimed" && t.assignee === me; }
    function sendTyping(typing) { post(ticketPath("/typing"), { typing: typing }).catch(() => {}); }
    function stopTyping() {
      clearTimeout(typingIdle); typingIdle = null;
      if (typingSentAt) { typingSentAt = 0; if (mine()) sendTyping(false); }
    }
    reply.addEventListener("input", () => {
      if (!mine()) return;
      const now = Date.now();
      if (now - typingSentAt >= 2000) { typingSentAt = now; sendTyping(true); }
      clearTimeout(typingIdle);
      typingIdle = setTimeout(stopTyping, 4000);
    });

    // 快捷回复: a keyword filter over the canned list; choosing one fills the reply box.
    const filter = document.getElementById("canned-filter");
    const cannedItems = [...document.querySelectorAll("#canned-list li")];
    filter.addEventListener("input", () => {
      const words = filter.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
      let shown = 0;
      cannedItems.forEach((li) => {
        const hay = li.firstElementChild.dataset.keywords.toLowerCase();
        li.hidden = !words.every((w) => hay.includes(w));
        if (!li.hidden) shown += 1;
      });
      document.getElementById("canned-empty").hidden = shown > 0;
    });
    cannedItems.forEach((li) => {
      li.firstElementChild.addEventListener("click", () => {
        reply.value = li.firstElementChild.dataset.text;
        reply.focus();
        const line = document.getElementById("reply-status");
        line.className = "form-status"; line.textContent = "已填入快捷回复，可修改后发送";
      });
    });

    // A form's text is cleared only once the server has it; on failure it stays, and the
    // reason is shown in Chinese right under the form.
    function submitText(boxId, statusId, buttonId, path, empty, done, after) {
      const box = document.getElementById(boxId), line = document.getElementById(statusId);
      const button = document.getElementById(buttonId);
      const send = async () => {
        if (button.disabled) return;
        if (!box.value.trim()) { line.className = "form-status error"; line.textContent = empty; box.focus(); return; }
        button.disabled = true;
        line.className = "form-status"; line.textContent = "提交中…";
        if (after) after();
        try {
          await post(ticketPath(path), { text: box.value });
          box.value = "";
          line.className = "form-status ok"; line.textContent = done;
        } catch (error) {
          line.className = "form-status error"; line.textContent = "未能提交：" + error.message + "。内容已保留，可修改后重试。";
          box.focus();
        } finally {
          button.disabled = false;
        }
      };
      button.onclick = send;
      return send;
    }
    const sendReply = submitText("reply", "reply-status", "send", "/reply", "请先输入回复内容", "已发送", stopTyping);
    submitText("note", "note-status", "add-note", "/note", "请先输入备注内容", "备注已添加");
    // Enter sends, Shift+Enter is a new line; Enter that confirms an input method's candidate does not send.
    reply.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) return;
      event.preventDefault();
      sendReply();
    });

    // A refund the agent made: amount and note, kept with the ticket.
    document.getElementById("refund-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const line = document.getElementById("refund-status");
      const amount = document.getElementById("refund-amount"), note = document.getElementById("refund-note");
      line.className = "form-status"; line.textContent = "提交中…";
      try {
        await post(ticketPath("/refunds"), { amount: amount.value, note: note.value });
        amount.value = ""; note.value = "";
        line.className = "form-status ok"; line.textContent = "退款已记录";
      } catch (error) {
        line.className = "form-status error"; line.textContent = "未能记录：" + error.message;
      }
    });
  }
})();
