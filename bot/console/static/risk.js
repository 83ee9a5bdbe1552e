// 小保 风险预警 (supervisors). Shopper text (excerpts) and staff notes are only ever inserted with
// textContent, never as HTML. The server pushes the whole alert list over /ws/risk; the filters apply here.
(function () {
  "use strict";
  const { el } = window.xiaobaoConsole;  // static/common.js
  const baseTitle = document.title;
  const LOUD = new Set(["urgent", "critical"]);  // a new one of these changes the tab title
  const RANK = { critical: 4, urgent: 3, high: 2, normal: 1 };
  const HISTORY_LABELS = {
    create: "生成预警", update: "新增相关事件", escalate: "级别升高", acknowledge: "确认收到", assign: "指派",
    resolve: "已处理", note: "添加备注", confirm: "确认安全风险", warn: "告知已购买顾客",
  };
  const CHANNEL_LABELS = { wechat: "微信", socketio: "网页聊天", rest: "网页聊天" };
  const hour = new Intl.DateTimeFormat("zh-CN", {
    timeZone: "Asia/Shanghai", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  });
  const $ = (id) => document.getElementById(id);

  let alerts = [];          // the latest list the server pushed
  let seen = null;          // id -> severity of every alert seen so far (null before the first list)
  const fresh = new Set();  // new or escalated alerts not opened yet: highlighted
  let current = null;       // the alert open in the detail pane
  let chart = null;
  let confirmArmed = null;

  // Errors in Chinese: the server's message (and its detail), else one chosen by the HTTP status.
  function failure(status) {
    if (status === 401) return "登录已失效，请重新登录";
    if (status === 403) return "页面已过期或没有权限，请刷新后重试";
    if (status === 404) return "没有这条预警";
    if (status === 409) return "该预警当前的状态不允许这个操作";
    if (status >= 500) return "服务器出错（" + status + "），请稍后再试";
    return "操作失败（" + status + "）";
  }
  function errorText(data, status) {
    const message = (typeof data.error === "string" && data.error) || failure(status);
    return typeof data.detail === "string" && data.detail ? message + "（" + data.detail + "）" : message;
  }

  function post(path, body) { return window.xiaobaoConsole.post(path, body, errorText); }

  function when(iso) { return iso ? String(iso).slice(5, 16).replace("T", " ") : "—"; }
  function number(x, digits) { return typeof x === "number" ? x.toFixed(digits) : "—"; }

  function subject(a) {
    return a.dimension_label + "「" + a.value + "」 " + a.kind_label + " · " + a.reason_label;
  }

  // -- the list -------------------------------------------------------------------------------
  function filters() {
    return { merchant: $("f-merchant").value, category: $("f-category").value,
             severity: $("f-severity").value, status: $("f-status").value };
  }

  function matches(a, f) {
    if (f.merchant && a.merchant !== f.merchant) return false;
    if (f.category && a.category !== f.category) return false;
    if (f.severity && a.severity !== f.severity) return false;
    if (f.status === "live") return a.status !== "resolved";
    return !f.status || a.status === f.status;
  }

  // The merchant and category choices are those of the alerts there are (plus the one chosen).
  function fillChoices(id, values) {
    const select = $(id);
    const chosen = select.value;
    const all = [...new Set(values.filter(Boolean).concat(chosen ? [chosen] : []))].sort();
    const first = el("option", "全部");
    first.value = "";
    select.replaceChildren(first, ...all.map((v) => { const o = el("option", v); o.value = v; return o; }));
    select.value = chosen;
  }

  function card(a) {
    const node = el("div", null, "card alert-card " + a.severity + (fresh.has(a.id) ? " fresh" : "") +
      (current && current.id === a.id ? " selected" : ""));
    node.dataset.alertId = a.id;
    node.tabIndex = 0;
    node.setAttribute("role", "button");
    const head = el("div");
    head.append(el("span", a.severity_label, "badge " + a.severity), " ");
    if (fresh.has(a.id)) head.append(el("strong", "新 "));
    head.append(el("span", subject(a)));
    node.append(head, el("div", a.rule),
      el("div", "实际 " + a.observed + " 起 · " + (a.safety ? "安全事件立即预警" : "预期 " + number(a.expected, 1) + " 起") +
        " · " + a.status_label +
        (a.assignee ? " · 负责人 " + a.assignee : "") + " · " + when(a.updated_at), "muted"));
    node.onclick = () => open(a.id);
    node.onkeydown = (event) => { if (event.key === "Enter") open(a.id); };
    return node;
  }

  function renderList() {
    const f = filters();
    const shown = alerts.filter((a) => matches(a, f));
    $("alerts").replaceChildren(...(shown.length ? shown.map(card) : [el("p", "没有符合条件的预警")]));
  }

  function onAlerts(list) {
    if (seen !== null) {
      const loud = [];
      for (const a of list) {
        const before = seen.get(a.id);
        if (before === undefined || RANK[a.severity] > RANK[before]) {
          fresh.add(a.id);
          if (LOUD.has(a.severity)) loud.push(a);
        }
      }
      if (loud.length) document.title = "【" + loud[0].severity_label + "预警】" + baseTitle;
    }
    seen = new Map(list.map((a) => [a.id, a.severity]));
    alerts = list;
    fillChoices("f-merchant", list.map((a) => a.merchant));
    fillChoices("f-category", list.map((a) => a.category));
    renderList();
    const open_ = current && list.find((a) => a.id === current.id);
    if (open_ && open_.version !== current.version) open(current.id);
  }

  // -- the detail -----------------------------------------------------------------------------
  async function open(id) {
    fresh.delete(id);
    if (![...fresh].some((f) => LOUD.has(seen && seen.get(f)))) document.title = baseTitle;
    const response = await fetch("/api/risk/alerts/" + encodeURIComponent(id), { credentials: "same-origin" });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) { $("live").textContent = "无法打开预警：" + errorText(data, response.status); return; }
    renderDetail(data);
    renderList();
  }

  function row(label, value) {
    const tr = el("tr");
    tr.append(el("td", label, "muted"), el("td", value));
    return tr;
  }

  function renderDetail(a) {
    if (!current || current.id !== a.id) $("a-status").textContent = "";
    current = a;
    $("detail").hidden = false;
    $("d-title").replaceChildren(el("span", a.severity_label, "badge " + a.severity), " " + subject(a));
    $("d-meta").textContent = "编号 " + a.id + " · " + a.status_label + (a.assignee ? " · 负责人 " + a.assignee : "") +
      " · 生成于 " + when(a.created_at) + " · 更新于 " + when(a.updated_at);
    $("d-rule").textContent = a.rule;
    $("d-evidence").replaceChildren(
      row("实际", a.observed + " 起"),
      row("按基线预期", a.safety ? "安全事件不等趋势，一起即预警" : number(a.expected, 1) + " 起"),
      row("倍数", a.safety ? "—" : number(a.ratio, 1) + " 倍"),
      row("时间窗口", "近 " + a.window_h + " 小时"),
      row("商品 / 商家 / 品类", [a.sku || "—", a.merchant || "—", a.category || "—"].join(" / ")));
    $("d-samples").replaceChildren(...(a.samples.length ? a.samples.map(sample) : [el("p", "无")]));
    $("d-notes").replaceChildren(...(a.notes.length ? a.notes.map((n) =>
      el("div", when(n.at) + " " + n.by + "：" + n.text)) : [el("p", "无")]));
    $("d-history").replaceChildren(...a.history.slice().reverse().map((h) =>
      el("div", when(h.at) + " · " + (HISTORY_LABELS[h.op] || h.op) + " · " + (h.by === "detector" ? "系统" : h.by === "system" ? "系统" : h.by), "muted")));
    $("a-ack").disabled = a.status !== "open";
    $("a-assign").disabled = $("a-resolve").disabled = a.status === "resolved";
    $("safety-box").hidden = !a.safety;
    $("a-confirm").disabled = Boolean(a.warning) || (a.status === "resolved" && !a.confirmed_by);
    disarm();
    $("d-warning").textContent = a.confirmed_by
      ? "已由 " + a.confirmed_by + " 于 " + when(a.confirmed_at) + " 确认。" + (a.warning ? warningText(a.warning) : "尚未完成告知。")
      : "";
    drawChart(a.series);
  }

  function sample(s) {
    const node = el("div", null, "sample");
    const head = el("div", when(s.at) + " · " + (CHANNEL_LABELS[s.channel] || s.channel || "—") + " · ", "muted");
    if (s.ticket) {
      const link = el("a", "工单 " + s.ticket);
      link.href = "/tickets/" + encodeURIComponent(s.ticket);
      head.append(link);
    } else {
      head.append("无工单");
    }
    node.append(head, el("div", s.excerpt || "（无摘录）", "excerpt"));
    return node;
  }

  function warningText(w) {
    if (w.note) return w.note;
    let text = "已告知 " + (w.sent || 0) + " 位已购买顾客";
    if (w.already) text += "，此前已告知 " + w.already + " 位";
    if (w.unreachable) text += "，无法联系 " + w.unreachable + " 位";
    if (w.failed) text += "，发送失败 " + w.failed + " 位";
    return text + "。";
  }

  function drawChart(series) {
    const counts = (series && series.counts) || [];
    const range = Number($("d-range").value);
    const from = range && counts.length > range ? counts.length - range : 0;
    const step = (series && series.bucket_s) || 3600;
    const labels = counts.slice(from).map((_, i) => hour.format(new Date((series.start + (from + i) * step) * 1000)));
    const expected = labels.map(() => (series && series.expected_per_bucket) || 0);
    if (chart) chart.destroy();
    chart = new Chart($("risk-chart"), {
      data: {
        labels: labels,
        datasets: [
          { type: "bar", label: "实际（起/小时）", data: counts.slice(from), backgroundColor: "#d1242f" },
          { type: "line", label: "按基线预期（起/小时）", data: expected, borderColor: "#1f6feb", borderDash: [6, 4], pointRadius: 0 },
        ],
      },
      options: {
        animation: false, maintainAspectRatio: false,
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } }, x: { ticks: { maxTicksLimit: 12 } } },
        plugins: { legend: { position: "bottom" } },
      },
    });
  }

  // -- actions --------------------------------------------------------------------------------
  async function act(op, body) {
    if (!current) return null;
    $("a-status").textContent = "处理中…";
    try {
      const data = await post("/api/risk/alerts/" + encodeURIComponent(current.id) + "/" + op, body);
      renderDetail(data.alert);
      renderList();
      $("a-status").textContent = data.message || "已完成";
      return data;
    } catch (error) {
      $("a-status").textContent = "失败：" + error.message;
      return null;
    }
  }

  function disarm() {
    clearTimeout(confirmArmed);
    confirmArmed = null;
    $("a-confirm").textContent = "确认安全风险并告知已购买顾客";
  }

  $("a-ack").onclick = () => act("acknowledge");
  $("a-assign").onclick = () => act("assign", { to: $("a-assign-to").value });
  $("a-note").onclick = () => act("note", { text: $("a-text").value }).then((d) => { if (d) $("a-text").value = ""; });
  $("a-resolve").onclick = () => act("resolve", { note: $("a-text").value }).then((d) => { if (d) $("a-text").value = ""; });
  // Warning shoppers cannot be undone: the first click arms the button, a second one within 8 s confirms.
  $("a-confirm").onclick = () => {
    if (!confirmArmed) {
      $("a-confirm").textContent = "再次点击确认：将告知所有购买过该商品的顾客";
      confirmArmed = setTimeout(disarm, 8000);
      return;
    }
    disarm();
    act("confirm");
  };
  for (const id of ["f-merchant", "f-category", "f-severity", "f-status"]) $(id).onchange = renderList;
  $("d-range").onchange = () => { if (current) drawChart(current.series); };

  function connect() {
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/risk");
    ws.onopen = () => { $("live").textContent = "实时更新中"; };
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "alerts") onAlerts(message.alerts);
    };
    ws.onclose = (event) => {
      if (event.code === 4403) { $("live").textContent = "无权查看风险预警"; return; }
      $("live").textContent = "连接中断，正在重连…";
      setTimeout(connect, 1500);
    };
  }
  connect();
})();
