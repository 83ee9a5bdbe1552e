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
    const remaining = t.sla_remaining_s - elapsed;
    const sla = el("div", remaining >= 0 ? "响应时限剩余 " + minutes(remaining) : "已超时 " + minutes(remaining));
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
      const who = turn.from === "user" ? "顾客" : turn.from === "agent" ? "人工客服 " + (turn.agent_name || turn.agent || "") : "小保";
      const row = el("div", null, "turn " + turn.from);
      row.append(el("div", who, "who"), el("div", turn.text, "bubble"));
      if (turn.citations && turn.citations.length) row.append(el("div", "依据：" + turn.citations.join("、"), "cite"));
      return row;
    }));
    const t = view.ticket;
    document.getElementById("ticket").replaceChildren(
      el("div", "状态：" + label(t.status, t.status_label) + (t.assignee ? "（" + (t.assignee_name || t.assignee) + "）" : "")),
      el("div", "类别：" + t.category_label + " · 优先级：" + label(t.priority, t.priority_label)),
      el("div", "顾客：" + (t.customer || "未登录") + " · 渠道：" + (t.channel_label || t.channel)),
      el("div", "订单：" + (t.order_id || "无")),
      el("div", "摘要：" + t.summary));
    document.getElementById("notes").replaceChildren(...(t.notes.length ? t.notes.map((n) => el("div", (n.agent_name || n.agent) + "：" + n.text)) : [el("p", "无")]));
    document.getElementById("orders").replaceChildren(...(view.orders.length ? view.orders.map((o) =>
      el("div", o.order_id + " · " + label(o.status, o.status_label) + " · " + o.items.map((i) => i.name).join("、"))) : [el("p", "无")]));
    renderEvidence(view.evidence);
    document.getElementById("returns").replaceChildren(...(view.returns.length ? view.returns.map((r) =>
      el("div", r.return_id + " · 订单 " + r.order_id + " · " + (r.kind_label || r.kind) + " · " + (r.status_label || r.status))) : [el("p", "无")]));
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
    // A form's text is cleared only once the server has it; on failure it stays, and the
    // reason is shown in Chinese right under the form.
    function submitText(boxId, statusId, buttonId, path, empty, done) {
      const box = document.getElementById(boxId), line = document.getElementById(statusId);
      const button = document.getElementById(buttonId);
      button.onclick = async () => {
        if (!box.value.trim()) { line.className = "form-status error"; line.textContent = empty; box.focus(); return; }
        button.disabled = true;
        line.className = "form-status"; line.textContent = "提交中…";
        try {
          await post("/api/tickets/" + encodeURIComponent(ticketId) + path, { text: box.value });
          box.value = "";
          line.className = "form-status ok"; line.textContent = done;
        } catch (error) {
          line.className = "form-status error"; line.textContent = "未能提交：" + error.message + "。内容已保留，可修改后重试。";
          box.focus();
        } finally {
          button.disabled = false;
        }
      };
    }
    submitText("reply", "reply-status", "send", "/reply", "请先输入回复内容", "已发送");
    submitText("note", "note-status", "add-note", "/note", "请先输入备注内容", "备注已添加");
  }
})();
