// phototag's page: upload to classify, search, tag cloud, photo view. Plain JavaScript,
// no build step. Everything comes from the JSON API; the address bar keeps the state
// (#q=QUERY, #photo=HASH) so the back button and links work.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

class AuthNeeded extends Error {}

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

// A 503 with Retry-After means "busy for now": wait as long as it says and try again (a
// few times), telling `onWait` how long. Anything else is answered at once.
async function api(path, options = {}, onWait = null) {
  let r;
  for (let attempt = 0; ; attempt++) {
    r = await fetch(path, { credentials: "same-origin", ...options });
    const wait = Number(r.headers.get("Retry-After"));
    if (r.status !== 503 || !(wait > 0) || attempt >= 5) break;
    if (onWait) onWait(wait);
    await sleep(Math.min(wait, 30) * 1000);
  }
  if (r.status === 401) { showLogin(); throw new AuthNeeded("log in first"); }
  let body = null;
  try { body = await r.json(); } catch (_) { /* not JSON */ }
  if (!r.ok) throw new Error((body && body.error) || `${r.status} ${r.statusText}`);
  return body;
}

// ---- login ----

function showLogin() {
  $("login").hidden = false;
  $("main").hidden = true;
  $("token").focus();
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("login-error").textContent = "";
  const r = await fetch("/api/login", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token: $("token").value }),
  });
  if (r.status === 429) {
    const wait = r.headers.get("Retry-After") || "a few";
    $("login-error").textContent = `Too many wrong tokens: try again in ${wait} s.`;
    return;
  }
  if (!r.ok) { $("login-error").textContent = "That token is not right."; return; }
  $("token").value = "";
  $("login").hidden = true;
  $("main").hidden = false;
  start();
});

// ---- bars (top-3 of an upload, tags of a photo) ----

function percent(p) { return `${p.toFixed(p >= 10 ? 1 : 2)}%`; }

function searchHref(label) { return "#q=" + encodeURIComponent(`"${label}"`); }

function bars(list, tags) {
  list.replaceChildren(...tags.map((t) => {
    const fill = el("span", { class: "fill" });
    fill.style.width = `${Math.max(0, Math.min(100, t.probability))}%`;
    return el("li", { class: "bar", "data-class": t.class },
      fill,
      el("a", { href: searchHref(t.class), text: t.class }),
      el("span", { class: "prob", text: percent(t.probability) }));
  }));
}

// ---- upload ----

async function classify(file) {
  $("upload-error").textContent = "";
  $("upload-status").textContent = `Classifying ${file.name}…`;
  $("classified").hidden = true;
  const preview = $("upload-preview");
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    const busy = (s) => { $("upload-status").textContent = `Busy; trying ${file.name} again in ${s} s…`; };
    const r = await api("/api/classify", { method: "POST", body: form }, busy);
    bars($("top3"), r.results);
    $("classified").hidden = false;
    const warn = (r.warnings || []).join("; ");
    $("upload-status").textContent = `${r.model}${warn ? " — " + warn : ""}`;
  } catch (e) {
    $("upload-status").textContent = "";
    if (!(e instanceof AuthNeeded)) $("upload-error").textContent = e.message;
  }
}

$("file").addEventListener("change", () => {
  const f = $("file").files[0];
  if (f) classify(f);
});
const drop = $("drop");
drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (ev) => {
  ev.preventDefault();
  drop.classList.remove("over");
  const f = ev.dataTransfer.files[0];
  if (f) classify(f);
});

// ---- search ----

$("search").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const q = $("q").value.trim();
  if (q) location.hash = "q=" + encodeURIComponent(q);
});

async function search(q) {
  $("q").value = q;
  $("results").hidden = false;
  $("results-title").textContent = `Searching ${q}…`;
  $("search-note").textContent = "";
  $("grid").replaceChildren();
  let r;
  try {
    r = await api("/api/search?q=" + encodeURIComponent(q));
  } catch (e) {
    if (e instanceof AuthNeeded) return;
    $("results-title").textContent = "Bad search";
    $("search-note").textContent = e.message;
    return;
  }
  // One tile per content: copies of a photo share a hash.
  const seen = new Set();
  const tiles = [];
  for (const h of r.results) {
    if (seen.has(h.hash)) continue;
    seen.add(h.hash);
    const best = (h.matched[0] || h.tags[0] || { class: "", probability: 0 });
    const name = h.path.split("/").pop();
    tiles.push(el("a", { href: "#photo=" + h.hash, title: `${name}: ${best.class} ${percent(best.probability)}`, "data-hash": h.hash },
      el("img", { src: h.thumb, alt: best.class, loading: "lazy", decoding: "async" }),
      el("span", { class: "label", text: `${best.class} ${percent(best.probability)}` })));
  }
  $("grid").replaceChildren(...tiles);
  const n = tiles.length;
  $("results-title").textContent = n === 0 ? `Nothing matches ${q}`
    : `${n} photo${n === 1 ? "" : "s"} for ${q}` + (r.count >= r.limit ? ` (the best ${r.limit} files)` : "");
  $("search-note").textContent = r.unknown.map((u) =>
    `No class or label matches “${u.term}”` + (u.suggestions.length ? `; close: ${u.suggestions.join(", ")}` : "")).join(". ");
}

// ---- tag cloud ----

async function cloud() {
  let r;
  try { r = await api("/api/labels?limit=40"); } catch (e) {
    if (!(e instanceof AuthNeeded)) $("cloud-note").textContent = e.message;
    return;
  }
  if (r.labels.length === 0) { $("cloud-note").textContent = "The catalog has no tagged photos yet."; return; }
  const max = Math.log(1 + Math.max(...r.labels.map((l) => l.images)));
  const sorted = [...r.labels].sort((a, b) => a.label.localeCompare(b.label));
  $("cloud").replaceChildren(...sorted.map((l) => {
    const a = el("a", { href: searchHref(l.label), title: `${l.images} photo${l.images === 1 ? "" : "s"}`, text: l.label });
    a.style.fontSize = `${0.85 + 1.1 * Math.log(1 + l.images) / (max || 1)}rem`;
    return a;
  }));
}

// ---- photo view ----

async function view(hash) {
  const d = $("viewer");
  $("view-title").textContent = "";
  $("view-tags").replaceChildren();
  $("view-paths").replaceChildren();
  $("view-meta").textContent = "";
  $("view-img").src = `/thumb/${hash}?size=large`;
  if (!d.open) d.showModal();
  try {
    const p = await api(`/api/photos/${hash}`);
    $("view-title").textContent = p.paths[0].split("/").pop();
    bars($("view-tags"), p.tags);
    $("view-meta").textContent = `${p.width}×${p.height} ${p.format.toUpperCase()}, ${(p.size / 1048576).toFixed(1)} MB — tagged by ${p.model}`;
    $("view-paths").replaceChildren(...p.paths.map((x) => el("li", { text: x })));
    $("view-original").href = p.photo;
  } catch (e) {
    if (!(e instanceof AuthNeeded)) $("view-meta").textContent = e.message;
  }
}

function closeViewer() {
  if ($("viewer").open) $("viewer").close();
}
$("view-close").addEventListener("click", () => history.back());
$("viewer").addEventListener("cancel", (ev) => { ev.preventDefault(); history.back(); });
$("viewer").addEventListener("click", (ev) => { if (ev.target === $("viewer")) history.back(); });
// Links inside the viewer (a tag) replace the photo in the history.
$("view-tags").addEventListener("click", (ev) => {
  const a = ev.target.closest("a");
  if (a) { ev.preventDefault(); location.replace(a.getAttribute("href")); }
});

// ---- routing ----

let lastQuery = null;

function route() {
  const h = new URLSearchParams(location.hash.slice(1));
  const photo = h.get("photo");
  const q = h.get("q");
  if (photo) { view(photo); return; }
  closeViewer();
  if (q && q !== lastQuery) { lastQuery = q; search(q); }
  if (!q) { lastQuery = null; $("results").hidden = true; }
}

window.addEventListener("hashchange", route);

async function start() {
  const s = await fetch("/api/session", { credentials: "same-origin" }).then((r) => r.json());
  if (s.token_required && !s.authorized) { showLogin(); return; }
  cloud();
  route();
}

start();
