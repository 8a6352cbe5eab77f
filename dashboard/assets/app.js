// The ringtrain dashboard: polls api/status every second and redraws the
// page; fetches chart.svg (drawn by the server) when the step moved on.
"use strict";

const $ = (id) => document.getElementById(id);
const POLL_MS = 1000, CHART_MS = 2000;
let chartStep = -1, chartAt = 0, chartSize = "", lastOK = 0;

function fmtDur(s) {
  if (!(s > 0)) return "0s";
  if (s < 1) return Math.round(s * 1000) + "ms";
  if (s < 60) return s.toFixed(1) + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + String(Math.floor(s % 60)).padStart(2, "0") + "s";
  return Math.floor(s / 3600) + "h" + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
}
const fmtLoss = (v) => v.toFixed(4);
const fmtInt = (v) => Math.round(v).toLocaleString("en-US");
const ms = (s) => (s * 1000).toFixed(s < 0.01 ? 1 : 0);

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function render(st) {
  document.title = `${st.job} · ${st.phase} ${st.step}/${st.max_steps} · ringtrain`;
  $("job").textContent = st.job;
  const ph = $("phase");
  ph.textContent = st.phase;
  ph.className = "phase " + st.phase;
  $("bar").style.width = (st.max_steps > 0 ? (100 * st.step) / st.max_steps : 0) + "%";
  $("step").textContent = `${st.step} / ${st.max_steps}`;
  $("loss").textContent = st.step > 0 ? fmtLoss(st.loss) : "–";
  $("val").textContent = st.val_loss !== undefined ? `${fmtLoss(st.val_loss)} after ${st.val_step}` : "–";
  $("lr").textContent = st.lr > 0 ? st.lr.toExponential(2) : "–";
  $("tps").textContent = st.tokens_per_s > 0 ? fmtInt(st.tokens_per_s) : "–";
  $("eta").textContent = st.eta_s > 0 ? fmtDur(st.eta_s) : "–";
  $("gen").textContent = st.generation > 0 ? `${st.generation} (W=${st.world_size})` : "–";
  $("ckpt").textContent = st.last_checkpoint_step >= 0 ? `step ${st.last_checkpoint_step}` : "none";
  const note = $("note");
  note.hidden = !st.error;
  note.textContent = st.error || "";
  $("rundir").textContent = `run dir ${st.run_dir}` + (st.run ? ` · run ${st.run}` : "") + (st.coordinator ? ` · coordinator ${st.coordinator}` : "");
  renderWorkers(st);
  renderEvents(st);
}

function renderWorkers(st) {
  const body = $("workers").tBodies[0];
  body.replaceChildren();
  for (const w of st.workers) {
    const tr = el("tr");
    tr.dataset.name = w.name;
    tr.append(el("td", "name", w.name), el("td", "rank", w.rank >= 0 ? String(w.rank) : "-"));
    const state = el("td", "state-cell");
    state.append(el("span", "state " + w.state, w.state));
    tr.append(state, el("td", "step", String(w.step)), el("td", "steptime", w.step_time_s > 0 ? fmtDur(w.step_time_s) : "–"));
    const split = el("td", "split-cell");
    if (w.step_time_s > 0) {
      const bar = el("div", "split");
      for (const [cls, v] of [["c", w.compute_s], ["w", w.allreduce_wait_s], ["o", w.optimizer_s]]) {
        const part = el("div", cls);
        part.style.width = Math.min(100, (100 * v) / w.step_time_s) + "%";
        bar.append(part);
      }
      split.append(bar, el("div", "splitn", `${ms(w.compute_s)} / ${ms(w.allreduce_wait_s)} / ${ms(w.optimizer_s)} ms`));
    } else {
      split.textContent = "–";
    }
    tr.append(split, el("td", "tps", w.tokens_per_s > 0 ? fmtInt(w.tokens_per_s) : "–"));
    const ago = w.last_heartbeat_unix_ms > 0 ? fmtDur((st.time_unix_ms - w.last_heartbeat_unix_ms) / 1000) + " ago" : "–";
    tr.append(el("td", "last", ago), el("td", "detail", w.detail || ""));
    body.append(tr);
  }
}

function eventText(e) {
  const parts = [];
  if (e.worker) parts.push(e.worker);
  if (e.kind === "healed") parts.push(`healed in ${fmtDur(e.seconds)}`);
  if (e.kind === "recovered") parts.push(`training again in ${fmtDur(e.seconds)}`);
  if (e.detail) parts.push(e.detail);
  return parts.join(" · ");
}

function renderEvents(st) {
  const list = $("events");
  list.replaceChildren();
  for (const e of [...st.events].reverse()) {
    const li = el("li");
    li.dataset.kind = e.kind;
    li.append(el("span", "t", new Date(e.time_unix_ms).toLocaleTimeString("en-GB")), el("span", "kind " + e.kind, e.kind),
      el("span", "st", `step ${e.step}`), el("span", "what", eventText(e)));
    list.append(li);
  }
  if (!st.events.length) list.append(el("li", "empty", "no events yet"));
}

async function refreshChart(step) {
  const box = $("chart");
  const w = Math.max(400, Math.min(2000, Math.round(box.clientWidth)));
  const h = Math.round(w * 0.6);
  const size = `${w}x${h}`;
  const now = Date.now();
  if (step === chartStep && size === chartSize) return;
  if (now - chartAt < CHART_MS && size === chartSize) return;
  chartAt = now;
  const resp = await fetch(`chart.svg?width=${w}&height=${h}`, { cache: "no-store" });
  if (resp.status === 204) return;
  const text = await resp.text();
  if (!resp.ok) {
    box.replaceChildren(el("p", "note", "chart: " + text));
    return;
  }
  box.innerHTML = text.replace(/^<\?xml[^>]*>\s*/, "");
  chartStep = step;
  chartSize = size;
}

async function poll() {
  try {
    const resp = await fetch("api/status", { cache: "no-store" });
    if (!resp.ok) throw new Error(resp.status + " " + (await resp.text()));
    const st = await resp.json();
    lastOK = Date.now();
    render(st);
    $("conn").textContent = "live · " + new Date().toLocaleTimeString("en-GB");
    $("conn").className = "conn";
    await refreshChart(st.step);
  } catch (err) {
    const c = $("conn");
    c.textContent = lastOK ? `coordinator unreachable since ${new Date(lastOK).toLocaleTimeString("en-GB")} (the job may be over)` : `no status: ${err.message}`;
    c.className = "conn lost";
  }
  setTimeout(poll, POLL_MS);
}

poll();
