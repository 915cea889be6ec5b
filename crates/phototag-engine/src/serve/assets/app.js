// phototag's page: the library (newest first, more as you scroll; select photos in it to
// teach a tag), search, near-duplicates, upload to classify, tag cloud, taught tags (each
// with a page of its best and borderline matches, corrected with one click), and the photo
// view with "more like this". Plain JavaScript, no build step. Everything comes from the
// JSON API; the address bar keeps the state (#q=QUERY, #dupes, #upload, #tags, #taught,
// #taught=NAME, #photo=HASH; nothing: the library) so the back button and links work.
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

function postJSON(path, body) {
  return api(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
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
  // Shown only once it has loaded: never a broken-image placeholder.
  preview.hidden = true;
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

$("upload-preview").addEventListener("load", () => { $("upload-preview").hidden = false; });

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

// ---- tiles (library, search, more like this, near-duplicates) ----

function tile(hash, thumb, label, title) {
  return el("a", { href: "#photo=" + hash, title, "data-hash": hash },
    el("img", { src: thumb, alt: label, loading: "lazy", decoding: "async" }),
    el("span", { class: "label", text: label }));
}

function fileName(path) { return path.split("/").pop(); }

// ---- library: newest first, a page at a time, the next one as the end comes into view ----

const pageSize = Number(new URLSearchParams(location.search).get("page")) || 60;
const library = { next: undefined, loading: false, seen: new Set() };

async function libraryPage() {
  if (library.loading || library.next === null) return;
  library.loading = true;
  $("library-note").textContent = "Loading…";
  let r;
  try {
    const after = library.next ? "&after=" + encodeURIComponent(library.next) : "";
    r = await api(`/api/library?limit=${pageSize}${after}`);
  } catch (e) {
    library.loading = false;
    if (!(e instanceof AuthNeeded)) $("library-note").textContent = e.message;
    return;
  }
  const tiles = [];
  for (const p of r.results) {
    if (library.seen.has(p.hash)) continue;  // copies of one content: one tile
    library.seen.add(p.hash);
    const top = p.top ? `${p.top.class} ${percent(p.top.probability)}` : "";
    const t = tile(p.hash, p.thumb, top || fileName(p.path), `${fileName(p.path)}${top ? ": " + top : ""}`);
    markTile(t);
    tiles.push(t);
  }
  $("library-grid").append(...tiles);
  library.next = r.next;
  library.loading = false;
  const n = library.seen.size;
  const waiting = r.queued > 0 ? `${r.queued} photo${r.queued === 1 ? " waits" : "s wait"} to be classified.` : "";
  $("library-note").textContent = n === 0 ? (waiting || "The catalog has no photos yet: `phototag index DIR` adds some.")
    : library.next === null ? `${n} photo${n === 1 ? "" : "s"}${waiting ? ". " + waiting : ""}` : "";
  // A short page may not fill the window: keep going while the end is in view.
  if (library.next !== null && endInView()) libraryPage();
}

function endInView() {
  const r = $("library-more").getBoundingClientRect();
  return !$("library").hidden && r.top < window.innerHeight + 600;
}

new IntersectionObserver((entries) => {
  if (entries.some((e) => e.isIntersecting) && !$("library").hidden) libraryPage();
}, { rootMargin: "600px" }).observe($("library-more"));

// ---- select photos in the library, mark them yes or no, teach a tag ----

const selection = { on: false, marks: new Map() };  // hash → "yes" | "no"

function markTile(t) {
  const m = selection.marks.get(t.dataset.hash);
  t.classList.toggle("yes", m === "yes");
  t.classList.toggle("no", m === "no");
  if (m) t.dataset.mark = m; else delete t.dataset.mark;
}

function selectionChanged() {
  for (const t of $("library-grid").querySelectorAll("a")) markTile(t);
  const marks = [...selection.marks.values()];
  const yes = marks.filter((m) => m === "yes").length;
  $("teach-count").textContent = `${yes} yes · ${marks.length - yes} no`;
}

function selecting(on) {
  selection.on = on;
  $("teach-bar").hidden = !on;
  $("select-start").hidden = on;
  $("library-grid").classList.toggle("selecting", on);
  $("teach-error").textContent = "";
  if (on) { taughtNames(); selectionChanged(); }
}

async function taughtNames() {
  try {
    const r = await api("/api/taught");
    $("taught-names").replaceChildren(...r.tags.map((t) => el("option", { value: t.name })));
  } catch (_) { /* the datalist is a convenience */ }
}

$("select-start").addEventListener("click", () => selecting(true));
$("teach-cancel").addEventListener("click", () => selecting(false));
$("teach-clear").addEventListener("click", () => { selection.marks.clear(); selectionChanged(); });

$("library-grid").addEventListener("click", (ev) => {
  if (!selection.on) return;
  const a = ev.target.closest("a");
  if (!a) return;
  ev.preventDefault();
  const mark = document.querySelector("#teach-bar input[name=mark]:checked").value;
  if (selection.marks.get(a.dataset.hash) === mark) selection.marks.delete(a.dataset.hash);
  else selection.marks.set(a.dataset.hash, mark);
  selectionChanged();
});

$("teach-bar").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("teach-error").textContent = "";
  const name = $("teach-name").value.trim();
  const yes = [], no = [];
  for (const [hash, m] of selection.marks) (m === "yes" ? yes : no).push(hash);
  $("teach-go").disabled = true;
  try {
    const r = await postJSON("/api/taught", { name, yes, no, replace: $("teach-replace").checked });
    selection.marks.clear();
    selecting(false);
    taughtLoaded = false;
    location.hash = "taught=" + encodeURIComponent(r.name);
  } catch (e) {
    if (!(e instanceof AuthNeeded)) $("teach-error").textContent = e.message;
  } finally {
    $("teach-go").disabled = false;
  }
});

// ---- taught tags: the list, and a tag's page with one-click corrections ----

let taughtLoaded = false;

function figuresLine(t) {
  const fit = t.folds ? `cross-validated (${t.folds} folds): precision ${(t.precision * 100).toFixed(0)}%, recall ${(t.recall * 100).toFixed(0)}%`
    : "not cross-validated (too few examples)";
  return `${t.yes} yes, ${t.no} no examples; ${fit}; threshold ${t.threshold.toFixed(2)}`;
}

async function taughtList() {
  if (taughtLoaded) return;
  taughtLoaded = true;
  $("taught-note").textContent = "";
  let r;
  try { r = await api("/api/taught"); } catch (e) {
    taughtLoaded = false;
    if (!(e instanceof AuthNeeded)) $("taught-note").textContent = e.message;
    return;
  }
  $("taught-list").replaceChildren(...r.tags.map((t) => el("li", {},
    el("a", { href: "#taught=" + encodeURIComponent(t.name), text: t.name, "data-name": t.name }),
    el("span", { class: "note", text: ` ${t.matches} photo${t.matches === 1 ? "" : "s"} — ${figuresLine(t)}` }))));
  $("taught-note").textContent = r.tags.length === 0
    ? "No taught tags yet: select photos in the library (or run `phototag teach NAME --yes ... --no ...`)." : "";
}

let currentTag = null;

function judgedTile(name, m) {
  const label = `${(m.probability * 100).toFixed(1)}%${m.example ? " · " + m.example : ""}`;
  const t = tile(m.hash, m.thumb, label, `${m.path ? fileName(m.path) : m.hash}: ${label}${m.tagged ? ", tagged" : ", not tagged"}`);
  t.dataset.probability = m.probability;
  const judge = (yes) => {
    const b = el("button", { type: "button", class: yes ? "judge yes" : "judge no",
      "aria-label": `${yes ? "is" : "is not"} ${name}`, "data-hash": m.hash, "data-yes": String(yes),
      text: yes ? "✓" : "✗" });
    if (m.example === (yes ? "yes" : "no")) b.setAttribute("aria-pressed", "true");
    b.addEventListener("click", () => correct(name, m.hash, yes));
    return b;
  };
  return el("div", { class: m.tagged ? "judged-tile tagged" : "judged-tile", "data-hash": m.hash }, t,
    el("div", { class: "judges" }, judge(true), judge(false)));
}

async function tagPage(name) {
  currentTag = name;
  $("tag-title").textContent = name;
  $("tag-error").textContent = "";
  let r;
  try { r = await api(`/api/taught/${encodeURIComponent(name)}?limit=24`); } catch (e) {
    if (!(e instanceof AuthNeeded)) $("tag-error").textContent = e.message;
    return;
  }
  if (currentTag !== name) return;
  $("tag-title").textContent = `${r.name} — ${r.matches} of ${r.scored} photos`;
  $("tag-figures").textContent = `${figuresLine(r)}; model ${r.model}.`;
  $("tag-search").href = searchHref(r.name);
  $("tag-warnings").replaceChildren(...r.warnings.map((w) => el("li", { text: w })));
  $("tag-borderline").replaceChildren(...r.borderline.map((m) => judgedTile(r.name, m)));
  $("tag-best").replaceChildren(...r.best.map((m) => judgedTile(r.name, m)));
  $("tag-borderline-note").textContent = r.borderline.length === 0 ? "Every photo it scores is an example: nothing left to judge." : "";
  $("tag-best-note").textContent = r.best.length === 0 ? "No photo has it yet." : "";
  $("tag-examples").replaceChildren(...r.examples.map((e) => {
    const t = tile(e.hash, e.thumb, e.yes ? "✓ yes" : "✗ no", e.path || e.hash);
    t.classList.add(e.yes ? "yes" : "no");
    return t;
  }));
}

async function correct(name, hash, yes) {
  $("tag-error").textContent = "";
  $("tag-status").textContent = "Refitting…";
  for (const b of document.querySelectorAll("#tag-page button.judge")) b.disabled = true;
  try {
    const r = await postJSON(`/api/taught/${encodeURIComponent(name)}/examples`, { hash, yes });
    $("tag-status").textContent = `Added as ${yes ? "yes" : "no"} and refitted: ${r.matches} photo${r.matches === 1 ? "" : "s"} have ${r.name} now.`;
    taughtLoaded = false;
    await tagPage(name);
  } catch (e) {
    $("tag-status").textContent = "";
    if (!(e instanceof AuthNeeded)) $("tag-error").textContent = e.message;
  } finally {
    for (const b of document.querySelectorAll("#tag-page button.judge")) b.disabled = false;
  }
}

// ---- near-duplicates ----

let dupesLoaded = false;

async function dupes() {
  if (dupesLoaded) return;
  dupesLoaded = true;
  $("dupes-note").textContent = "Looking for near copies…";
  $("dupes-groups").replaceChildren();
  let r;
  try { r = await api("/api/dupes"); } catch (e) {
    dupesLoaded = false;
    if (!(e instanceof AuthNeeded)) $("dupes-note").textContent = e.message;
    return;
  }
  const groups = r.groups.map((g) => {
    const tiles = g.members.map((m, i) => {
      const label = i === 0 ? `best · ${m.width}×${m.height}` : `${(m.similarity * 100).toFixed(1)}% · ${m.width}×${m.height}`;
      const t = tile(m.hash, m.thumb, label, m.paths.join("\n"));
      t.dataset.similarity = m.similarity;
      return t;
    });
    const files = g.members.reduce((n, m) => n + m.paths.length, 0);
    return el("div", { class: "dupe-group" },
      el("p", { class: "note", text: `${g.members.length} photo${g.members.length === 1 ? "" : "s"}, ${files} files` }),
      el("div", { class: "grid" }, ...tiles));
  });
  $("dupes-groups").replaceChildren(...groups);
  let note = r.count === 0 ? "No near copies found." : `${r.count} group${r.count === 1 ? "" : "s"} of photos at least ${(r.threshold * 100).toFixed(0)}% alike; the one with the most pixels first.`;
  if (r.count > r.groups.length) note += ` The first ${r.groups.length} are shown.`;
  if (r.without_embedding > 0) note += ` ${r.without_embedding} photos have no embedding yet and were not compared (\`phototag retag --embeddings\`).`;
  $("dupes-note").textContent = note;
}

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
    const label = `${best.class} ${percent(best.probability)}`;
    tiles.push(tile(h.hash, h.thumb, label, `${fileName(h.path)}: ${label}`));
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

let currentPhoto = null;

async function view(hash) {
  currentPhoto = hash;
  const d = $("viewer");
  $("view-title").textContent = "";
  $("view-tags").replaceChildren();
  $("view-taught").replaceChildren();
  $("view-taught-title").hidden = true;
  $("view-paths").replaceChildren();
  $("view-meta").textContent = "";
  $("view-img").src = `/thumb/${hash}?size=large`;
  if (!d.open) d.showModal();
  try {
    const p = await api(`/api/photos/${hash}`);
    $("view-title").textContent = p.paths[0].split("/").pop();
    // Taught tags (`phototag teach`; class index over 1000) apart from the model's classes.
    bars($("view-tags"), p.tags.filter((t) => t.index <= 1000));
    const taught = p.tags.filter((t) => t.index > 1000);
    bars($("view-taught"), taught);
    // A taught tag links to its page, where it can be corrected.
    for (const [i, a] of [...$("view-taught").querySelectorAll("a")].entries()) {
      a.href = "#taught=" + encodeURIComponent(taught[i].class);
    }
    $("view-taught-title").hidden = taught.length === 0;
    $("view-meta").textContent = `${p.width}×${p.height} ${p.format.toUpperCase()}, ${(p.size / 1048576).toFixed(1)} MB — tagged by ${p.model}`;
    $("view-paths").replaceChildren(...p.paths.map((x) => el("li", { text: x })));
    $("view-original").href = p.photo;
  } catch (e) {
    if (!(e instanceof AuthNeeded)) $("view-meta").textContent = e.message;
  }
  similar(hash);
}

async function similar(hash) {
  $("view-similar").replaceChildren();
  $("view-similar-note").textContent = "";
  let r;
  try { r = await api(`/api/similar/${hash}?limit=12`); } catch (e) {
    if (!(e instanceof AuthNeeded)) $("view-similar-note").textContent = e.message;
    return;
  }
  if (currentPhoto !== hash) return;  // another photo was opened meanwhile
  $("view-similar").replaceChildren(...r.results.map((s) => {
    const t = tile(s.hash, s.thumb, `${(s.score * 100).toFixed(1)}%`, `${fileName(s.path)}: ${(s.score * 100).toFixed(1)}% alike`);
    t.dataset.score = s.score;
    return t;
  }));
  $("view-similar-note").textContent = r.note || (r.results.length === 0 ? "Nothing like it yet." : "");
}

function closeViewer() {
  currentPhoto = null;
  if ($("viewer").open) $("viewer").close();
}
$("view-close").addEventListener("click", () => history.back());
$("viewer").addEventListener("cancel", (ev) => { ev.preventDefault(); history.back(); });
$("viewer").addEventListener("click", (ev) => { if (ev.target === $("viewer")) history.back(); });
// Links inside the viewer (a tag) replace the photo in the history.
for (const id of ["view-tags", "view-taught"]) {
  $(id).addEventListener("click", (ev) => {
    const a = ev.target.closest("a");
    if (a) { ev.preventDefault(); location.replace(a.getAttribute("href")); }
  });
}

// ---- routing ----

let lastQuery = null;
let cloudLoaded = false;

function show(view) {
  for (const v of document.querySelectorAll("main > .view")) v.hidden = v.id !== view;
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.view === view) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function route() {
  const raw = location.hash.slice(1);
  const h = new URLSearchParams(raw);
  const photo = h.get("photo");
  if (photo) { view(photo); return; }
  closeViewer();
  const q = h.get("q");
  if (q) {
    show("results");
    if (q !== lastQuery) { lastQuery = q; search(q); }
    return;
  }
  lastQuery = null;
  if (!h.get("taught")) currentTag = null;
  if (raw === "dupes") { show("dupes"); dupes(); return; }
  if (raw === "upload") { show("upload"); return; }
  if (h.has("taught")) {
    const name = h.get("taught");
    if (name) { show("tag-page"); if (name !== currentTag) tagPage(name); return; }
    show("taught-section");
    taughtList();
    return;
  }
  if (raw === "tags") {
    show("cloud-section");
    if (!cloudLoaded) { cloudLoaded = true; cloud(); }
    return;
  }
  show("library");
  if (library.next === undefined) libraryPage();
}

window.addEventListener("hashchange", route);

async function start() {
  const s = await fetch("/api/session", { credentials: "same-origin" }).then((r) => r.json());
  if (s.token_required && !s.authorized) { showLogin(); return; }
  route();
}

start();
