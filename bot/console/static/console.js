// 小保 agent console. Shopper text is only ever inserted with textContent, never as HTML.
(function () {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const page = document.currentScript.dataset.page;

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  async function post(path, body) {
    const response = await fetch(path, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body || {}),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || response.statusText);
    return data;
  }

  function minutes(seconds) { return Math.floor(Math.abs(seconds) / 60) + "分" + (Math.abs(seconds) % 60) + "秒"; }

  function ticketCard(t, elapsed) {
    const card = el("div", null, "card " + t.priority);
    card.dataset.ticketId = t.id;
    const link = el("a", t.id + " · " + t.category_label + " · " + t.priority);
    link.href = "/tickets/" + encodeURIComponent(t.id);
    card.append(link, el("div", t.summary));
    const remaining = t.sla_remaining_s - elapsed;
    const sla = el("div", remaining >= 0 ? "SLA 剩余 " + minutes(remaining) : "已超时 " + minutes(remaining));
    if (remaining < 0) sla.className = "overdue";
    card.append(el("div", "已等待 " + minutes(t.waiting_s + elapsed)), sla);
    return card;
  }

  // The server pushes the queue when a ticket changes; the countdowns tick here in between.
  let lastQueue = null;
  let receivedAt = 0;

  function renderQueue(snapshot) {
    if (snapshot) { lastQueue = snapshot; receivedAt = Date.now(); }
    if (!lastQueue) return;
    const elapsed = Math.floor((Date.now() - receivedAt) / 1000);
    for (const [id, list] of [["waiting", lastQueue.waiting], ["mine", lastQueue.mine]]) {
      const box = document.getElementById(id);
      if (!box) continue;
      box.replaceChildren(...(list.length ? list.map((t) => ticketCard(t, elapsed)) : [el("p", "暂无")]));
    }
  }

  function renderConversation(view) {
    const transcript = document.getElementById("transcript");
    transcript.replaceChildren(...view.transcript.map((turn) => {
      const who = turn.from === "user" ? "顾客" : turn.from === "agent" ? "人工客服 " + (turn.agent || "") : "小保";
      const row = el("div", null, "turn " + turn.from);
      row.append(el("div", who, "who"), el("div", turn.text, "bubble"));
      if (turn.citations && turn.citations.length) row.append(el("div", "依据：" + turn.citations.join("、"), "cite"));
      return row;
    }));
    const t = view.ticket;
    document.getElementById("ticket").replaceChildren(
      el("div", "状态：" + t.status + (t.assignee ? "（" + t.assignee + "）" : "")),
      el("div", "类别：" + t.category_label + " · 优先级：" + t.priority),
      el("div", "顾客：" + (t.customer || "未登录") + " · 渠道：" + t.channel),
      el("div", "订单：" + (t.order_id || "无")),
      el("div", "摘要：" + t.summary));
    document.getElementById("notes").replaceChildren(...(t.notes.length ? t.notes.map((n) => el("div", n.agent + "：" + n.text)) : [el("p", "无")]));
    document.getElementById("orders").replaceChildren(...(view.orders.length ? view.orders.map((o) =>
      el("div", o.order_id + " · " + o.status + " · " + o.items.map((i) => i.name).join("、"))) : [el("p", "无")]));
    renderEvidence(view.evidence);
    document.getElementById("returns").replaceChildren(...(view.returns.length ? view.returns.map((r) =>
      el("div", r.return_id + " · 订单 " + r.order_id + " · " + r.kind + " · " + r.status)) : [el("p", "无")]));
  }

  // The evidence pack collected at escalation: photos (thumbnails the console serves to logged-in
  // agents; a click opens the photo), the order as it was then, and the knowledge-base answers given.
  function renderEvidence(evidence) {
    if (!evidence) return;
    const photos = evidence.photos.map((p) => {
      if (!p.available) return el("span", "照片" + (p.index + 1) + "（未保存在本机）", "cite");
      const link = el("a");
      link.href = p.url; link.target = "_blank"; link.rel = "noopener";
      const img = el("img");
      img.src = p.thumbnail; img.alt = "顾客照片" + (p.index + 1); img.loading = "lazy";
      link.append(img);
      return link;
    });
    document.getElementById("evidence-photos").replaceChildren(...(photos.length ? photos : [el("p", "无")]));
    const o = evidence.order;
    document.getElementById("evidence-order").replaceChildren(...(o ? [
      el("div", o.order_id + " · " + o.status + (o.freight_insurance ? " · 运费险" : "")),
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
    const d = await (await fetch("/api/dashboard", { credentials: "same-origin" })).json();
    const pct = (x) => (100 * x).toFixed(0) + "%";
    box.textContent = "会话 " + d.conversations + " · 自动解决率 " + pct(d.automation_rate) + " · 转人工率 " +
      pct(d.escalation_rate) + " · 等待中位数 " + (d.median_wait_s === null ? "—" : minutes(Math.round(d.median_wait_s))) +
      " · 满意度 " + (d.csat === null ? "—" : d.csat.toFixed(1));
  }

  if (page === "queue") {
    connect((message) => { if (message.type === "queue") renderQueue(message); });
    setInterval(() => renderQueue(null), 1000);
    loadDashboard();
    setInterval(loadDashboard, 10000);
  }

  if (page === "ticket") {
    const ticketId = document.querySelector("[data-ticket]").dataset.ticket;
    const status = document.getElementById("status");
    const act = (path, body) => post("/api/tickets/" + encodeURIComponent(ticketId) + path, body)
      .then(() => { status.textContent = "已完成"; }).catch((error) => { status.textContent = "失败：" + error.message; });
    connect((message) => { if (message.type === "conversation") renderConversation(message); }, ticketId);
    document.getElementById("claim").onclick = () => act("/claim");
    document.getElementById("release").onclick = () => act("/release");
    document.getElementById("resolve").onclick = () => act("/resolve");
    document.getElementById("transfer").onclick = () => act("/transfer", { to: document.getElementById("transfer-to").value });
    document.getElementById("canned").onchange = (event) => { document.getElementById("reply").value = event.target.value; };
    document.getElementById("send").onclick = () => {
      const box = document.getElementById("reply");
      act("/reply", { text: box.value }).then(() => { box.value = ""; });
    };
    document.getElementById("add-note").onclick = () => {
      const box = document.getElementById("note");
      act("/note", { text: box.value }).then(() => { box.value = ""; });
    };
  }
})();
