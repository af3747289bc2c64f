// benchfleet serve: the pages' one script. No framework, no build step; plots with uPlot.
// Every request goes to this server (the Content-Security-Policy allows nothing else).
"use strict";
(function () {
  // ---- shared -------------------------------------------------------------------------------
  const $ = (sel, el) => (el || document).querySelector(sel);
  const esc = (s) => String(s == null ? "" : s).replace(/[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const params = () => new URLSearchParams(location.search);

  // A token given as #token=T is kept for this tab and removed from the address bar.
  (function () {
    const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
    if (m) {
      sessionStorage.setItem("bf-token", decodeURIComponent(m[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
  })();
  const token = () => sessionStorage.getItem("bf-token");

  async function api(path, opts) {
    opts = opts || {};
    const headers = Object.assign({ Accept: "application/json" }, opts.headers || {});
    if (token()) headers.Authorization = "Bearer " + token();
    if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(path, {
      method: opts.method || "GET", headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    if (!res.ok) throw new Error((body && body.error) || res.status + " " + res.statusText);
    return body;
  }

  function events(query, handlers) {
    const q = new URLSearchParams(query || {});
    if (token()) q.set("token", token());
    const src = new EventSource("/api/events" + (q.toString() ? "?" + q : ""));
    for (const [kind, fn] of Object.entries(handlers)) {
      src.addEventListener(kind, (e) => fn(JSON.parse(e.data), e));
    }
    return src;
  }

  function showError(e) {
    const m = $("#msg");
    if (m) m.innerHTML = '<div class="err">' + esc(e.message || e) + "</div>";
  }
  const clearError = () => { const m = $("#msg"); if (m) m.textContent = ""; };

  function throttle(fn, ms) {
    let timer = null, again = false;
    return function run() {
      if (timer) { again = true; return; }
      fn();
      timer = setTimeout(() => { timer = null; if (again) { again = false; run(); } }, ms);
    };
  }

  function fmtSecs(s) {
    if (s == null || !isFinite(s)) return "–";
    const a = Math.abs(s);
    if (a >= 1) return s.toFixed(3) + " s";
    if (a >= 1e-3) return (s * 1e3).toFixed(2) + " ms";
    if (a >= 1e-6) return (s * 1e6).toFixed(1) + " µs";
    return (s * 1e9).toFixed(0) + " ns";
  }
  function fmtUnit(v, unit) {
    if (v == null || !isFinite(v)) return "–";
    if (unit === "s") return fmtSecs(v);
    if (unit === "bytes") return (v / 1048576).toFixed(2) + " MiB";
    return Number(v.toPrecision(6)).toString();
  }
  const fmtDate = (ns) => new Date(ns / 1e6).toISOString().replace(".000Z", "Z").replace("T", " ");
  const short = (id) => String(id || "").slice(0, 10);
  const runLink = (id) => id ? '<a href="/run.html?id=' + encodeURIComponent(id) + '">' + esc(short(id)) + "</a>" : "–";
  const badge = (s) => '<span class="badge ' + esc(s) + '">' + esc(s) + "</span>";

  function cssVar(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
  const palette = () => ["--s1", "--s2", "--s3", "--s4", "--s5", "--s6"].map(cssVar);
  function axes() {
    const stroke = cssVar("--muted"), grid = { stroke: cssVar("--line"), width: 1 };
    return [{ stroke, grid, ticks: grid }, { stroke, grid, ticks: grid, size: 70 }];
  }
  const plotWidth = (el) => Math.max(320, Math.min(1300, el.clientWidth || 900));

  // Fill a form's fields from the URL; on submit, put them back in the URL (a permalink).
  function bindForm(form, onChange) {
    const p = params();
    for (const el of form.elements) if (el.name && p.has(el.name)) el.value = p.get(el.name);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const q = new URLSearchParams();
      for (const el of form.elements) if (el.name && el.value) q.set(el.name, el.value);
      history.pushState(null, "", location.pathname + (q.toString() ? "?" + q : ""));
      onChange();
    });
    window.addEventListener("popstate", () => {
      const p2 = params();
      for (const el of form.elements) if (el.name) el.value = p2.get(el.name) || (el.tagName === "SELECT" ? el.options[0].value : "");
      onChange();
    });
  }

  function download(name, type, text) {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([text], { type }));
    a.download = name;
    document.body.appendChild(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 0);
  }

  // ---- Runs ---------------------------------------------------------------------------------
  function runsPage() {
    const form = $("#filters");
    async function load() {
      try {
        const q = params();
        const data = await api("/api/runs" + (q.toString() ? "?" + q : ""));
        clearError();
        $("#runs tbody").innerHTML = data.runs.map((r) => "<tr><td>" + runLink(r.run_id) +
          "</td><td>" + esc(r.suite) + "</td><td>" + esc(r.started_at) + "</td><td>" + badge(r.status) +
          "</td><td>" + esc(short(r.commit) || "–") + "</td><td>" + esc(r.machine_class || "–") +
          "</td><td>" + esc(r.host) + "</td></tr>").join("") ||
          '<tr><td colspan="7" class="muted">no runs match</td></tr>';
        $("#runs").dataset.rows = data.runs.length;
      } catch (e) { showError(e); }
    }
    bindForm(form, load);
    load();
    const reload = throttle(load, 250);
    events({}, { run: reload });
  }

  // ---- Run ----------------------------------------------------------------------------------
  function runPage() {
    const id = params().get("id") || "latest";
    let plots = [];
    let status = null;
    let shown = 0;
    async function load() {
      try {
        const d = await api("/api/runs/" + encodeURIComponent(id));
        clearError();
        render(d);
      } catch (e) { showError(e); }
    }
    function render(d) {
      const r = d.run;
      status = r.status;
      document.title = "Run " + short(r.run_id) + " · benchfleet";
      $("#title").innerHTML = "Run " + esc(r.run_id) + " " + badge(r.status);
      $("#meta").textContent = "suite " + r.suite + " · started " + r.started_at +
        (r.finished_at ? " · finished " + r.finished_at : "") + " · " + d.records + " records · host " +
        r.host + (r.commit ? " · commit " + r.commit : "") + (r.machine_class ? " · " + r.machine_class : "");
      $("#warnings").innerHTML = d.warnings.map((w) => "<li>" + esc(w) + "</li>").join("");
      const suite = encodeURIComponent(r.suite);
      $("#results tbody").innerHTML = d.results.map((x) => "<tr><td><a href=\"/history.html?benchmark=" +
        encodeURIComponent(x.name) + "&suite=" + suite + "\">" + esc(x.name) + "</a></td><td class=num>" +
        x.runs + "</td><td class=num>" + fmtSecs(x.mean) + "</td><td class=num>" + fmtSecs(x.stddev) +
        "</td><td class=num>" + fmtSecs(x.median) + "</td><td class=num>" + fmtSecs(x.min) +
        "</td><td class=num>" + fmtSecs(x.max) + "</td><td class=num>" + fmtSecs(x.p95) + "</td><td>" +
        (x.failures && x.failures.length ? '<span class="failed">' + x.failures.length + " failed</span>" : "ok") +
        "</td></tr>").join("");
      plots.forEach((p) => p.destroy());
      plots = [];
      drawDist(d);
      drawSys(d);
    }
    function drawDist(d) {
      const el = $("#dist");
      el.textContent = "";
      const withTimes = d.results.filter((x) => x.times && x.times.length);
      if (!withTimes.length) { el.innerHTML = '<span class="muted">no successful runs yet</span>'; return; }
      const n = Math.max.apply(null, withTimes.map((x) => x.times.length));
      const xs = Array.from({ length: n }, (_, i) => i + 1);
      const colors = palette();
      const series = [{ label: "run #" }].concat(withTimes.map((x, i) => ({
        label: x.name, stroke: colors[i % colors.length], paths: () => null,
        points: { show: true, size: 6, fill: colors[i % colors.length] },
        value: (u, v) => fmtSecs(v),
      })));
      const data = [xs].concat(withTimes.map((x) => xs.map((_, i) => x.times[i] == null ? null : x.times[i])));
      const log = $("#dlog").checked;
      const ax = axes();
      ax[1].values = (u, vals) => vals.map(fmtSecs);
      plots.push(new uPlot({
        width: plotWidth(el), height: 280, series, axes: ax,
        scales: { x: { time: false }, y: log ? { distr: 3 } : {} },
      }, data, el));
      el.dataset.points = withTimes.reduce((a, x) => a + x.times.length, 0);
    }
    function drawSys(d) {
      const el = $("#sys");
      if (!d.system || !d.system.t_ms.length) return;
      el.textContent = "";
      const c = palette();
      plots.push(new uPlot({
        width: plotWidth(el), height: 200, axes: axes(),
        scales: { x: { time: false } },
        series: [{ label: "s", value: (u, v) => v == null ? "–" : v.toFixed(1) + " s" },
          { label: "CPU busy %", stroke: c[0] },
          { label: "benchfleet's own (cores ×100)", stroke: c[2] }],
      }, [d.system.t_ms.map((t) => t / 1000), d.system.busy_pct,
        d.system.own_busy_cores.map((x) => x * 100)], el));
    }
    $("#dlog").addEventListener("change", load);
    load().then(() => {
      const reload = throttle(load, 1000);
      // Follow this run: new records as they are stored, status changes.
      api("/api/runs/" + encodeURIComponent(id)).then((d) => {
        const runId = d.run.run_id;
        events({ run: runId }, {
          records: (ev) => {
            const live = $("#live");
            for (const x of ev.data.new) {
              const line = document.createElement("div");
              line.textContent = fmtDate(x.started_ns) + "  " + x.name + " #" + x.iteration + "  " +
                fmtSecs(x.wall) + (x.ok ? "" : "  " + x.outcome);
              live.appendChild(line);
              shown++;
            }
            live.dataset.count = shown;
            live.scrollTop = live.scrollHeight;
            reload();
          },
          run: (ev) => { if (ev.data.status !== status) reload(); },
        });
      }).catch(showError);
    });
  }

  // ---- History ------------------------------------------------------------------------------
  function historyPage() {
    const form = $("#hform");
    let plot = null;
    api("/api/benchmarks").then((d) => {
      $("#benchmarks").innerHTML = d.benchmarks.map((b) => "<option value=\"" + esc(b) + "\">").join("");
      if (!params().get("benchmark") && d.benchmarks.length) {
        form.elements.benchmark.value = d.benchmarks[0];
      }
    }).catch(() => {});
    async function load() {
      const p = params();
      if (!p.get("benchmark")) { $("#msg").innerHTML = '<span class="muted">pick a benchmark</span>'; return; }
      const q = new URLSearchParams({ format: "columns" });
      for (const k of ["benchmark", "metric", "suite", "by"]) if (p.get(k)) q.set(k, p.get(k));
      const mode = p.get("mode") || "means", yMode = p.get("y") || "lin";
      if (mode === "raw") q.set("raw", "true");
      try {
        const d = await api("/api/history?" + q);
        if (d.format === "columns") {
          const c = d.points;
          d.points = c.value.map((v, i) => ({
            index: i, value: v, run_id: c.run_id[i], time_ns: c.time_ns[i], runs: c.runs[i],
            stddev: c.stddev[i], commit: c.commit[i], git_commit: c.git_commit[i],
          }));
        }
        clearError();
        draw(d, mode, yMode, p.get("by") === "commit");
      } catch (e) {
        showError(e);
        if (plot) { plot.destroy(); plot = null; }
        $("#plot").dataset.points = 0;
      }
    }
    function draw(d, mode, yMode, byCommit) {
      const pts = d.points, unit = d.unit, el = $("#plot");
      const base = pts.length ? pts[0].value : 1;
      const tf = yMode === "pct" ? (v) => v == null ? null : (v / base - 1) * 100 : (v) => v;
      const fmtY = yMode === "pct" ? (v) => v == null ? "–" : v.toFixed(1) + " %" : (v) => fmtUnit(v, unit);
      const xOf = (p, i) => byCommit ? i : p.time_ns / 1e9;
      let xs, ys, info;
      if (mode === "raw" && d.raw && !byCommit) {
        const raw = d.raw.slice().sort((a, b) => a[0] - b[0]);
        xs = raw.map((r) => r[0] / 1e9);
        ys = raw.map((r) => tf(r[1]));
        const byRun = {};
        pts.forEach((p) => { byRun[p.run_id] = p; });
        info = raw.map((r) => ({ run_id: r[2], time_ns: r[0], value: r[1], commit: (byRun[r[2]] || {}).git_commit }));
      } else {
        xs = pts.map(xOf);
        ys = pts.map((p) => tf(p.value));
        info = pts;
      }
      const changeXs = d.changes.map((c) => pts[c.index] ? xOf(pts[c.index], c.index) : null);
      const colors = palette(), bad = cssVar("--bad"), muted = cssVar("--muted");
      $("#summary").textContent = d.benchmark + " · " + d.metric + " · " + pts.length + " runs" +
        (mode === "raw" ? " · " + xs.length + " raw points" : "") + " · " + d.changes.length + " change point(s)";
      // Markers and whiskers only where they can be told apart: at most DENSE points in view.
      const DENSE = 2000;
      const inView = (u) => {
        const lo = u.scales.x.min, hi = u.scales.x.max;
        let n = 0;
        for (let i = 0; i < xs.length; i++) if (xs[i] >= lo && xs[i] <= hi) n++;
        return n;
      };
      const whiskers = (u) => {
        if (mode === "raw" || inView(u) > DENSE) return;
        const ctx = u.ctx;
        const x0 = u.scales.x.min, x1 = u.scales.x.max;
        ctx.save();
        ctx.strokeStyle = colors[0];
        ctx.lineWidth = 1 * devicePixelRatio;
        pts.forEach((p, i) => {
          if (p.stddev == null || p.runs < 2 || xs[i] < x0 || xs[i] > x1) return;
          const h = 1.96 * p.stddev / Math.sqrt(p.runs);
          const lo = tf(p.value - h), hi = tf(p.value + h);
          if (yMode === "log" && lo <= 0) return;
          const x = u.valToPos(xs[i], "x", true);
          const y1 = u.valToPos(lo, "y", true), y2 = u.valToPos(hi, "y", true);
          ctx.beginPath(); ctx.moveTo(x, y1); ctx.lineTo(x, y2);
          ctx.moveTo(x - 3, y1); ctx.lineTo(x + 3, y1); ctx.moveTo(x - 3, y2); ctx.lineTo(x + 3, y2);
          ctx.stroke();
        });
        ctx.restore();
      };
      const marks = (u) => {
        const ctx = u.ctx;
        ctx.save();
        ctx.strokeStyle = bad;
        ctx.fillStyle = bad;
        ctx.setLineDash([5 * devicePixelRatio, 4 * devicePixelRatio]);
        ctx.lineWidth = 1.5 * devicePixelRatio;
        d.changes.forEach((c, k) => {
          const cx = changeXs[k];
          if (cx == null) return;
          const x = u.valToPos(cx, "x", true);
          ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
          ctx.fillText((c.percent >= 0 ? "+" : "") + c.percent.toFixed(1) + "%", x + 4, u.bbox.top + 12 * devicePixelRatio);
        });
        ctx.restore();
      };
      const tip = $("#tip");
      let down = null;
      const ax = axes();
      ax[1].values = (u, vals) => vals.map(fmtY);
      ax[1].size = 80;
      const opts = {
        width: plotWidth(el), height: 380, axes: ax,
        scales: { x: { time: !byCommit }, y: yMode === "log" ? { distr: 3 } : {} },
        cursor: { drag: { x: true, y: false }, focus: { prox: 30 } },
        legend: { show: true },
        series: [
          { label: byCommit ? "commit #" : "time", value: (u, v) => v == null ? "–" : byCommit ? String(v) : fmtDate(v * 1e9) },
          { label: d.benchmark + " (" + d.metric + ")", stroke: colors[0], width: mode === "raw" ? 0 : 1.5,
            paths: mode === "raw" ? () => null : undefined,
            points: { show: xs.length <= DENSE || mode === "raw", size: mode === "raw" ? (xs.length > DENSE ? 2 : 4) : 7, fill: colors[0] },
            value: (u, v) => fmtY(v) },
        ],
        hooks: {
          draw: [whiskers, marks],
          setCursor: [(u) => {
            const i = u.cursor.idx;
            if (i == null || u.cursor.left < 0 || !info[i]) { tip.style.display = "none"; return; }
            const p = info[i];
            tip.textContent = "commit " + (p.commit || p.git_commit || "–") + "\n" + fmtDate(p.time_ns) + "\n" +
              "value " + fmtUnit(p.value, unit) + (p.runs ? " (mean of " + p.runs + ")" : "") + "\nrun " + p.run_id;
            const r = u.over.getBoundingClientRect();
            tip.style.left = (r.left + u.cursor.left + 14) + "px";
            tip.style.top = (r.top + u.cursor.top + 14) + "px";
            tip.style.display = "block";
            tip.dataset.run = p.run_id;
          }],
        },
      };
      if (plot) plot.destroy();
      el.textContent = "";
      plot = new uPlot(opts, [xs, ys], el);
      plot.over.addEventListener("mouseleave", () => { tip.style.display = "none"; });
      plot.over.addEventListener("mousedown", (e) => { down = [e.clientX, e.clientY]; });
      plot.over.addEventListener("click", (e) => {
        if (down && Math.abs(e.clientX - down[0]) + Math.abs(e.clientY - down[1]) > 4) return;
        const i = plot.cursor.idx;
        if (i != null && info[i]) location.href = "/run.html?id=" + encodeURIComponent(info[i].run_id);
      });
      el.dataset.points = xs.length;
      // When the plot is on screen, in ms from navigation start (the page-paint figure).
      requestAnimationFrame(() => { window.bfPaintMs = performance.now(); });
      window.bfHistory = {
        plot, info,
        // Where point i is on the page (CSS pixels), for tests and tools.
        pointPos: (i) => {
          const r = plot.over.getBoundingClientRect();
          return { x: r.left + plot.valToPos(xs[i], "x"), y: r.top + plot.valToPos(ys[i], "y") };
        },
      };
      $("#changes tbody").innerHTML = d.changes.map((c, k) => "<tr><td>" + c.index + "</td><td>" +
        runLink(c.run_id) + "</td><td>" + esc(c.commit || "–") + "</td><td class=num>" + fmtUnit(c.before_mean, unit) +
        "</td><td class=num>" + fmtUnit(c.after_mean, unit) + "</td><td class=\"num " +
        (c.percent > 0 ? "regressed" : "improved") + "\">" + (c.percent >= 0 ? "+" : "") + c.percent.toFixed(1) +
        " %</td><td class=num>" + c.p_value.toExponential(1) + "</td></tr>").join("") ||
        '<tr><td colspan="7" class="muted">none detected</td></tr>';
    }
    $("#unzoom").addEventListener("click", () => { if (plot) plot.setScale("x", { min: null, max: null }) || load(); });
    bindForm(form, load);
    load();
  }

  // ---- Compare ------------------------------------------------------------------------------
  function comparePage() {
    const form = $("#cform");
    let rows = [], md = "", sortK = "change", sortDir = -1;
    async function load() {
      const p = params();
      if (!p.get("a") || !p.get("b")) {
        $("#msg").innerHTML = '<span class="muted">name two runs (id, prefix, latest) or tags KEY=VALUE</span>';
        return;
      }
      try {
        const d = await api("/api/compare?a=" + encodeURIComponent(p.get("a")) + "&b=" + encodeURIComponent(p.get("b")));
        clearError();
        const side = (s) => Array.isArray(s) ? s.map(side).join(", ") : (s.run_id ? short(s.run_id) + " (" + s.suite + ", " + s.started_at + ")" : s.spec);
        $("#sides").textContent = "baseline " + side(d.baseline) + " · candidate " + side(d.candidate) +
          (d.history_runs ? " · noise bands from " + d.history_runs + " earlier runs" : "");
        md = d.markdown;
        rows = d.comparisons.map((c) => ({
          name: c.name, base: c.baseline.mean, cand: c.candidate.mean, ratio: c.mean_ratio,
          lo: c.ratio_ci.mean.lower, hi: c.ratio_ci.mean.upper, change: c.change_percent, verdict: c.verdict,
          text: c.assessment_text,
        }));
        $("#skipped").textContent = d.skipped.length ? "skipped: " + d.skipped.map((s) => s.name + " (" + s.reason + ")").join("; ") : "";
        render();
      } catch (e) { showError(e); }
    }
    function visible() {
      const f = $("#cfilter").value.toLowerCase(), v = $("#vfilter").value;
      return rows.filter((r) => (!f || r.name.toLowerCase().includes(f)) && (!v || r.verdict === v))
        .sort((a, b) => (a[sortK] < b[sortK] ? -1 : a[sortK] > b[sortK] ? 1 : 0) * sortDir);
    }
    function render() {
      const vis = visible();
      $("#cmp tbody").innerHTML = vis.map((r) => "<tr title=\"" + esc(r.text) + "\"><td><a href=\"/history.html?benchmark=" +
        encodeURIComponent(r.name) + "\">" + esc(r.name) + "</a></td><td class=num>" + fmtSecs(r.base) +
        "</td><td class=num>" + fmtSecs(r.cand) + "</td><td class=num>" + r.ratio.toFixed(3) + "</td><td class=num>" +
        r.lo.toFixed(3) + " – " + r.hi.toFixed(3) + "</td><td class=num>" + (r.change >= 0 ? "+" : "") + r.change.toFixed(1) +
        " %</td><td>" + badge(r.verdict) + "</td></tr>").join("") ||
        '<tr><td colspan="7" class="muted">nothing to show</td></tr>';
      $("#cmp").dataset.rows = vis.length;
    }
    document.querySelectorAll("#cmp th.sort").forEach((th) => th.addEventListener("click", () => {
      const k = th.dataset.k;
      sortDir = sortK === k ? -sortDir : 1;
      sortK = k;
      render();
    }));
    $("#cfilter").addEventListener("input", render);
    $("#vfilter").addEventListener("change", render);
    $("#md").addEventListener("click", () => download("comparison.md", "text/markdown", md));
    $("#csv").addEventListener("click", () => {
      const q = (s) => /[",\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
      const lines = ["benchmark,baseline_mean_s,candidate_mean_s,ratio,ratio_ci_low,ratio_ci_high,change_percent,verdict"]
        .concat(visible().map((r) => [q(r.name), r.base, r.cand, r.ratio, r.lo, r.hi, r.change, r.verdict].join(",")));
      download("comparison.csv", "text/csv", lines.join("\n") + "\n");
    });
    bindForm(form, load);
    load();
  }

  // ---- Alerts -------------------------------------------------------------------------------
  function alertsPage() {
    const form = $("#aform");
    const states = ["untriaged", "acknowledged", "invalid", "fixed"];
    async function load() {
      try {
        const q = params();
        const d = await api("/api/alerts" + (q.toString() ? "?" + q : ""));
        clearError();
        $("#alerts tbody").innerHTML = d.alerts.map((a) => "<tr data-id=\"" + esc(a.id) + "\"><td><input type=checkbox class=pick></td><td>" +
          "<a href=\"/history.html?benchmark=" + encodeURIComponent(a.benchmark) + "&metric=" + encodeURIComponent(a.metric) +
          (a.suite ? "&suite=" + encodeURIComponent(a.suite) : "") + "\">" + esc(a.benchmark) + "</a></td><td>" + esc(a.metric) +
          "</td><td class=\"num regressed\">+" + a.percent.toFixed(1) + " %</td><td class=num>" + fmtSecs(a.before) + " → " +
          fmtSecs(a.after) + "</td><td>" + runLink(a.run_id) + "</td><td>" + runLink(a.baseline_run_id) + "</td><td>" +
          esc(short(a.commit) || "–") + "</td><td><select class=\"state " + esc(a.state) + "\">" +
          states.map((s) => "<option" + (s === a.state ? " selected" : "") + ">" + s + "</option>").join("") +
          "</select></td><td><input class=note size=24 value=\"" + esc(a.note) + "\"></td></tr>").join("") ||
          '<tr><td colspan="10" class="muted">no alerts</td></tr>';
        $("#alerts").dataset.rows = d.alerts.length;
      } catch (e) { showError(e); }
    }
    async function triage(ids, state, note) {
      try {
        const body = { ids, state };
        if (note !== undefined) body.note = note;
        await api("/api/alerts", { method: "POST", body });
        await load();
      } catch (e) { showError(e); }
    }
    $("#alerts").addEventListener("change", (e) => {
      const tr = e.target.closest("tr[data-id]");
      if (!tr) return;
      if (e.target.classList.contains("state") || e.target.classList.contains("note")) {
        triage([tr.dataset.id], $(".state", tr).value, $(".note", tr).value);
      }
    });
    $("#all").addEventListener("change", (e) => {
      document.querySelectorAll("#alerts .pick").forEach((c) => { c.checked = e.target.checked; });
    });
    $("#bapply").addEventListener("click", () => {
      const ids = Array.from(document.querySelectorAll("#alerts .pick:checked")).map((c) => c.closest("tr").dataset.id);
      if (!ids.length) { showError("select alerts first"); return; }
      const note = $("#bnote").value;
      triage(ids, $("#bstate").value, note ? note : undefined);
    });
    bindForm(form, load);
    load();
    events({}, { alert: throttle(load, 500) });
  }

  // ---- dispatch -----------------------------------------------------------------------------
  const page = document.body.dataset.page;
  document.querySelectorAll("header a[data-nav]").forEach((a) => { if (a.dataset.nav === page) a.classList.add("on"); });
  const pages = { runs: runsPage, run: runPage, history: historyPage, compare: comparePage, alerts: alertsPage };
  if (pages[page]) pages[page]();
})();
