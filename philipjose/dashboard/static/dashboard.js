// philipjose dashboard: renders the snapshots the server pushes (server-sent events); no reloads.
"use strict";
(function () {
  const view = document.body.dataset.view;
  const main = document.getElementById("main");
  const live = document.getElementById("live");
  const opened = new Map();  // failure -> whether its traceback is open (the newest opens by itself)
  const SVGNS = "http://www.w3.org/2000/svg";

  const esc = (v) => String(v == null ? "" : v).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const num = (n) => (n == null ? "" : Number(n).toLocaleString("en-US"));
  function dur(s) {
    if (s == null) return "";
    s = Math.max(0, s);
    if (s < 10) return s.toFixed(1) + " s";
    if (s < 60) return Math.round(s) + " s";
    if (s < 3600) return Math.floor(s / 60) + "m" + String(Math.round(s % 60)).padStart(2, "0") + "s";
    return Math.floor(s / 3600) + "h" + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
  }
  function bytes(n) {
    if (n == null) return "";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + units[i];
  }
  const hue = (i) => (140 + i * 137.508) % 360;  // the first function green; red means failed
  const colour = (i) => `hsl(${hue(i)},55%,55%)`;
  const section = (id, title, body) => `<section id="${id}"><h2>${esc(title)}</h2>${body}</section>`;
  const table = (head, rows) => `<table><thead><tr>${head.map((h) => (h.startsWith("#") ? `<th class="num">${esc(h.slice(1))}</th>` : `<th>${esc(h)}</th>`)).join("")}</tr></thead><tbody>${rows.join("")}</tbody></table>`;
  const stat = (id, value, label, cls) => `<div class="stat ${cls || ""}"><b id="${id}">${value}</b><span>${esc(label)}</span></div>`;

  function sparkline(values) {
    const w = 240, h = 40, n = values.length;
    if (n < 2) return `<svg id="spark" width="${w}" height="${h}"></svg>`;
    const top = Math.max(1, ...values);
    const pts = values.map((v, i) => `${((i / (n - 1)) * w).toFixed(1)},${(h - 2 - (v / top) * (h - 4)).toFixed(1)}`).join(" ");
    return `<svg id="spark" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}"><polyline points="${pts}" fill="none" stroke="#2e7d32" stroke-width="1.5"/><text x="2" y="10">${num(top)}/s</text></svg>`;
  }

  function timeline(tl) {
    const rows = tl.workers;
    if (!rows.length) return '<p class="muted">no task finished yet</p>';
    let t0 = 0;
    for (const r of rows) for (const t of r.tasks) t0 = Math.min(t0, t[0]);
    t0 = Math.max(t0, -60);
    const label = 70, width = Math.max(400, main.clientWidth - 60), rowh = 16, plot = width - label - 10;
    const x = (t) => label + ((Math.max(t, t0) - t0) / (0 - t0 || 1)) * plot;
    let svg = `<svg id="timeline-svg" width="${width}" height="${rows.length * rowh + 18}">`;
    rows.forEach((r, i) => {
      const y = i * rowh;
      svg += `<text x="0" y="${y + 12}">w${r.slot}</text>`;
      for (const [s, e, fn, ok] of r.tasks) {
        if (e < t0) continue;
        const x1 = x(s), wd = Math.max(1, x(e) - x1);
        svg += ok
          ? `<rect x="${x1.toFixed(1)}" y="${y + 2}" width="${wd.toFixed(1)}" height="${rowh - 4}" fill="${colour(fn)}"></rect>`
          : `<rect class="failed" x="${x1.toFixed(1)}" y="${y + 1}" width="${Math.max(3, wd).toFixed(1)}" height="${rowh - 2}" fill="#c62828" stroke="#7f0000"></rect>`;
      }
    });
    const axis = rows.length * rowh + 14;
    svg += `<text x="${label}" y="${axis}">${dur(-t0)} ago</text><text x="${label + plot - 20}" y="${axis}">now</text></svg>`;
    const legend = tl.functions.map((f, i) => `<span><i style="background:${colour(i)}"></i>${esc(f)}</span>`).join("") + '<span><i style="background:#c62828"></i>failed</span>';
    return svg + `<div class="legend">${legend}</div>`;
  }

  function farm(d) {
    const c = d.counters, total = c.submitted, done = c.resolved, pct = total ? (100 * done) / total : 0;
    let html = "";
    if (d.broken) html += `<section class="bad"><b>the farm broke:</b> ${esc(d.broken)}</section>`;
    html += section("progress", "progress",
      `<div class="stats"><div class="bar"><div style="width:${pct.toFixed(1)}%"></div></div>` +
      stat("done", num(done), "done") + stat("total", num(total), "submitted") + stat("pct", pct.toFixed(0) + "%", "") +
      stat("rate", d.rate.toFixed(1), "tasks/s") + stat("eta", d.eta == null ? "-" : dur(d.eta), "eta") +
      stat("failed", num(c.failed), "failed", c.failed ? "bad" : "") + stat("retries", num(c.retries), "retries") +
      stat("duplicates", num(c.duplicates_started) + " / " + num(c.duplicates_won), "speculated / won") +
      stat("cancelled", num(c.cancelled), "cancelled") + stat("workers-up", num(c.workers), "workers up") +
      stat("workers-lost", num(c.workers_lost), "workers lost") + stat("machines-down", num(c.machines_down), "machines down") +
      (c.replayed ? stat("replayed", num(c.replayed), "from journal") : "") +
      `<div class="stat">${sparkline(d.spark)}<span>throughput, last ${d.spark.length} s</span></div></div>`);
    const wrows = d.workers.map((w) =>
      `<tr data-slot="${w.slot}"><td>${w.kind === "erlang" ? "erl " + w.slot.slice(1) : "w" + w.slot}</td><td class="node">${esc(w.node)}</td><td>${esc(w.machine)}${w.came && w.came !== "launched" ? ` <span class="muted">(${esc(w.came)})</span>` : ""}</td>` +
      `<td class="num os-pid">${w.os_pid == null ? "" : w.os_pid}</td><td><span class="state ${w.state.split(" ")[0]}">${esc(w.state)}</span></td>` +
      `<td class="num tasks-done">${num(w.tasks_done)}</td><td class="task">${esc(w.task || "")}</td><td class="num">${dur(w.task_for)}</td>` +
      `<td class="num">${w.cpu == null ? "" : w.cpu.toFixed(0) + "%"}</td><td class="num">${bytes(w.rss)}</td>` +
      `<td class="muted">${esc(w.last_end || "")}</td></tr>`);
    html += section("workers", "workers", table(["slot", "node", "machine", "#OS pid", "state", "#tasks done", "current task", "#for", "#CPU", "#RSS", "last end"], wrows));
    const mrows = d.machines.map((m) =>
      `<tr><td>${esc(m.host)}</td><td><span class="state ${m.state}">${esc(m.state)}</span></td><td class="num">${m.workers}</td>` +
      `<td class="num">${m.failures}</td><td>${esc(m.last_error || "")}</td><td class="num">${m.retry_in == null ? "" : dur(m.retry_in)}</td></tr>`);
    html += section("machines", "machines", table(["machine", "state", "#workers", "#failed launches", "last error", "#retry in"], mrows));
    html += section("timeline", "task stream (the last tasks of each worker slot)", timeline(d.timeline));
    const fails = d.failures.map((f, i) => {
      const key = f.task + "|" + f.type;
      const open = (opened.has(key) ? opened.get(key) : i === 0) ? " open" : "";
      return `<details data-key="${esc(key)}"${open}><summary><b class="bad">${esc(f.type)}</b> ${esc(f.message.split("\n")[0])} <span class="muted">- task ${esc(f.task)}${f.worker ? " on " + esc(f.worker) : ""}, ${dur(f.ago)} ago</span></summary>` +
        (f.traceback ? `<pre class="traceback">${esc(f.traceback)}</pre>` : `<pre>${esc(f.message)}</pre>`) + "</details>";
    });
    const shown = d.failures_seen > d.failures.length ? ` (last ${d.failures.length} of ${num(d.failures_seen)})` : "";
    html += section("failures", "failures" + shown, fails.join("") || '<p class="muted">none</p>');
    return html;
  }

  function treeSvg(root, index) {
    const nodes = [];
    let leaves = 0, depth = 0;
    (function place(n, d) {
      depth = Math.max(depth, d);
      const me = { n, d, kids: [] };
      nodes.push(me);
      if (n.children.length) {
        me.kids = n.children.map((c) => place(c, d + 1));
        me.y = (me.kids[0].y + me.kids[me.kids.length - 1].y) / 2;
      } else {
        me.y = leaves++;
      }
      return me;
    })(root, 0);
    const colw = 190, rowh = 34, pad = 8;
    const w = (depth + 1) * colw + pad, h = Math.max(1, leaves) * rowh + pad;
    const X = (p) => pad + p.d * colw, Y = (p) => pad + p.y * rowh + 10;
    let svg = `<svg class="tree" id="tree-${index}" width="${w}" height="${h}" xmlns="${SVGNS}">`;
    const label = (n) => n.name || n.id || n.pid;
    for (const p of nodes) for (const k of p.kids) {
      const mx = X(p) + colw - 30, from = Math.min(mx, X(p) + 18 + 6.5 * label(p.n).length);  // past the label
      svg += `<path d="M${from},${Y(p)} H${mx} V${Y(k)} H${X(k)}" fill="none" stroke="#9aa3b2"/>`;
    }
    for (const p of nodes) {
      const n = p.n, sup = n.type === "supervisor";
      const fill = !n.running ? "#fff" : sup ? "#1d2330" : "#2e7d32";
      svg += `<g class="tree-node" data-name="${esc(n.name)}" data-id="${esc(n.id)}">` +
        `<circle cx="${X(p) + 5}" cy="${Y(p)}" r="5" fill="${fill}" stroke="#1d2330"/>` +
        `<text x="${X(p) + 14}" y="${Y(p) + 4}">${esc(label(n))}</text>` +
        `<text class="muted" x="${X(p) + 14}" y="${Y(p) + 16}" style="fill:#6b7280">${esc([n.name && n.id !== n.name ? n.id : "", n.pid || "not running", n.note || ""].filter(Boolean).join(" "))}</text></g>`;
    }
    return svg + "</svg>";
  }

  function node(d) {
    let html = `<section id="summary"><div class="stats">${stat("node-name", esc(d.node), d.distributed ? "node" : "not distributed")}` +
      stat("process-count", num(d.process_count), "processes") + stat("connection-count", num(d.connections.length), "connections") + "</div></section>";
    html += section("trees", "supervision trees", d.trees.length ? d.trees.map(treeSvg).join("") : '<p class="muted">no supervisor runs</p>');
    const shown = d.process_count > d.processes.length ? ` (the oldest ${d.processes.length} of ${num(d.process_count)})` : "";
    const list = (items, count) => esc(items.join(" ")) + (count > items.length ? ` +${count - items.length}` : "");
    const prows = d.processes.map((p) =>
      `<tr><td>${esc(p.pid)}</td><td class="name">${esc(p.name)}</td><td>${esc(p.function)}</td><td>${esc(p.status)}</td>` +
      `<td class="num">${num(p.mailbox)}</td><td>${list(p.links, p.link_count)}</td><td>${list(p.monitors, p.monitor_count)}</td><td>${p.trap_exit ? "yes" : ""}</td></tr>`);
    html += section("processes", "processes" + shown, table(["pid", "registered name", "current function", "status", "#mailbox", "links", "monitors", "traps exits"], prows));
    const crows = d.connections.map((c) =>
      `<tr><td>${esc(c.node)}</td><td>${esc(c.address)}</td><td>${esc(c.state)}</td><td>${c.tls ? "TLS" : "TCP"}</td><td>${c.hidden ? "hidden" : "visible"}</td>` +
      `<td class="num">${bytes(c.bytes_in)}</td><td class="num">${bytes(c.bytes_out)}</td><td class="num">${bytes(c.queued)}</td></tr>`);
    html += section("connections", "connections", crows.length ? table(["node", "address", "state", "transport", "kind", "#bytes in", "#bytes out", "#queued"], crows) : '<p class="muted">none</p>');
    return html;
  }

  function render(d) {
    main.innerHTML = d.kind === "farm" ? farm(d) : node(d);
    document.title = "philipjose " + view + " - " + (d.kind === "farm" ? `${d.counters.resolved}/${d.counters.submitted}` : d.node);
  }

  main.addEventListener("toggle", (e) => {
    const key = e.target.dataset && e.target.dataset.key;
    if (key) opened.set(key, e.target.open);
  }, true);

  const source = new EventSource("events/" + view);
  source.onopen = () => { live.textContent = "live"; live.className = "live on"; };
  source.onerror = () => { live.textContent = "reconnecting"; live.className = "live off"; };
  source.onmessage = (e) => render(JSON.parse(e.data));
})();
