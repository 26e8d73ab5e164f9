// netspec serve: the live diagram page. Polls /api/state; fetches /api/svg when the
// spec changed or a click collapsed or expanded a block. Spec text only ever reaches the
// page as SVG text (parsed as XML, scripts and handlers stripped) or through textContent.
"use strict";

const POLL_MS = 300;
const SVG_NS = "http://www.w3.org/2000/svg";
const XLINK_NS = "http://www.w3.org/1999/xlink";
const DROP = new Set(["script", "foreignobject", "iframe", "object", "embed", "image", "style"]);

const ui = {
  status: document.getElementById("status"), file: document.getElementById("file"),
  summary: document.getElementById("summary"), error: document.getElementById("error"),
  viewport: document.getElementById("viewport"), canvas: document.getElementById("canvas"),
  empty: document.getElementById("empty"), tip: document.getElementById("tip"),
};
const collapsed = new Set();
const expanded = new Set();
const tips = new WeakMap();
let view = { x: 0, y: 0, s: 1 };
let shown = { version: -1, key: "" };
let loading = false;
let fitted = false;

function setView(v) {
  view = v;
  ui.canvas.style.transform = `translate(${v.x}px, ${v.y}px) scale(${v.s})`;
}

function fit() {
  const svg = ui.canvas.querySelector("svg");
  if (!svg) return;
  const w = svg.width.baseVal.value || 1, h = svg.height.baseVal.value || 1;
  const box = ui.viewport.getBoundingClientRect();
  const s = Math.min(box.width / w, box.height / h, 1.5) * 0.96;
  setView({ x: (box.width - w * s) / 2, y: Math.max(8, (box.height - h * s) / 2), s });
}

// The SVG comes from Graphviz, which escapes spec text; this is the second lock.
function sanitize(text) {
  const doc = new DOMParser().parseFromString(text, "image/svg+xml");
  const root = doc.documentElement;
  if (!root || root.namespaceURI !== SVG_NS || doc.getElementsByTagName("parsererror").length) return null;
  for (const el of Array.from(root.querySelectorAll("*"))) {
    if (DROP.has(el.localName.toLowerCase())) { el.remove(); continue; }
    for (const a of Array.from(el.attributes)) {
      const name = a.name.toLowerCase();
      if (name.startsWith("on") || ((name === "href" || name.endsWith(":href")) && !a.value.startsWith("#"))) {
        el.removeAttributeNS(a.namespaceURI, a.localName);
      }
    }
  }
  return root;
}

// Tooltips: Graphviz puts them on <a xlink:title>; they become our hover box instead.
function collectTips(svg) {
  for (const a of Array.from(svg.querySelectorAll("a"))) {
    const text = a.getAttributeNS(XLINK_NS, "title") || a.getAttribute("title");
    const owner = a.closest("g.node, g.cluster, g.edge") || a;
    if (text) tips.set(owner, text);
    a.removeAttributeNS(XLINK_NS, "title");
  }
  for (const t of Array.from(svg.querySelectorAll("title"))) t.remove();
}

function query() {
  const q = new URLSearchParams();
  if (collapsed.size) q.set("collapsed", Array.from(collapsed).join(","));
  if (expanded.size) q.set("expanded", Array.from(expanded).join(","));
  return q.toString();
}

async function loadSvg() {
  if (loading) return;
  loading = true;
  try {
    const key = query();
    const r = await fetch("/api/svg?" + key, { cache: "no-store" });
    const data = await r.json();
    if (data.error) { showError(data.error); return; }
    if (!data.svg) return;
    const svg = sanitize(data.svg);
    if (!svg) return;
    const node = document.importNode(svg, true);
    collectTips(node);
    ui.canvas.replaceChildren(node);
    ui.empty.hidden = true;
    shown = { version: data.version, key };
    document.body.dataset.version = String(data.version);
    if (!fitted) { fit(); fitted = true; }
  } finally {
    loading = false;
  }
}

function showError(text) {
  ui.error.hidden = !text;
  ui.error.textContent = text || "";
  ui.canvas.classList.toggle("stale", Boolean(text));
  ui.status.className = "status " + (text ? "error" : "ok");
  document.body.dataset.error = text ? "1" : "0";
}

async function poll() {
  try {
    const r = await fetch("/api/state", { cache: "no-store" });
    const st = await r.json();
    ui.file.textContent = st.file;
    ui.summary.textContent = st.model ? `${st.model} · ${st.params.toLocaleString("en-US")} parameters` : "";
    document.title = `${st.model || "netspec"} — netspec serve`;
    showError(st.error);
    document.body.dataset.state = String(st.version);
    if (st.version !== shown.version || query() !== shown.key) await loadSvg();
  } catch (e) {
    ui.status.className = "status offline";
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

// Pan and zoom.
let drag = null;
ui.viewport.addEventListener("pointerdown", (e) => {
  drag = { x: e.clientX, y: e.clientY, vx: view.x, vy: view.y, moved: false };
});
window.addEventListener("pointermove", (e) => {
  if (drag) {
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) { drag.moved = true; ui.viewport.classList.add("dragging"); }
    if (drag.moved) setView({ x: drag.vx + dx, y: drag.vy + dy, s: view.s });
  }
  const owner = e.target.closest && e.target.closest("g.node, g.cluster, g.edge");
  const text = owner && tips.get(owner);
  ui.tip.hidden = !text || Boolean(drag && drag.moved);
  if (text) {
    ui.tip.textContent = text;
    ui.tip.style.left = Math.min(e.clientX + 14, window.innerWidth - ui.tip.offsetWidth - 8) + "px";
    ui.tip.style.top = Math.min(e.clientY + 14, window.innerHeight - ui.tip.offsetHeight - 8) + "px";
  }
});
window.addEventListener("pointerup", () => { setTimeout(() => { drag = null; }, 0); ui.viewport.classList.remove("dragging"); });
ui.viewport.addEventListener("wheel", (e) => {
  e.preventDefault();
  const box = ui.viewport.getBoundingClientRect();
  const px = e.clientX - box.left, py = e.clientY - box.top;
  const s = Math.min(8, Math.max(0.05, view.s * Math.exp(-e.deltaY * 0.0015)));
  setView({ x: px - (px - view.x) * (s / view.s), y: py - (py - view.y) * (s / view.s), s });
}, { passive: false });

// A click collapses the cluster it lands in, or expands a collapsed block.
ui.canvas.addEventListener("click", (e) => {
  if (drag && drag.moved) return;
  const node = e.target.closest("g.node");
  if (node && node.id.startsWith("x-")) {
    const path = node.id.slice(2);
    collapsed.delete(path);
    expanded.add(path);
  } else if (!node) {
    const cluster = e.target.closest("g.cluster");
    if (!cluster || !cluster.id.startsWith("c-")) return;
    const path = cluster.id.slice(2);
    expanded.delete(path);
    collapsed.add(path);
  } else {
    return;
  }
  loadSvg();
});

document.getElementById("fit").addEventListener("click", fit);
document.getElementById("reset").addEventListener("click", () => {
  collapsed.clear();
  expanded.clear();
  fitted = false;
  loadSvg();
});
window.addEventListener("resize", () => { if (!drag) fit(); });

poll();
