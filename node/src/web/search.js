// p2pd web UI: finding files. The Search page (results appear as peers answer, each
// with its sources, one click to download with a progress bar), a peer's page (the
// files it lists, read with POST /api/browse), and the catalog card of My files (the
// browse-off setting). Loaded after app.js, whose helpers (h, api, state, bytes, …) it
// uses; app.js calls back into it from its router, its live events and its tables.
// Text from the network (names, peer ids) is only ever inserted as text.
"use strict";

const finder = {
  query: "",
  results: new Map(), // cid -> SearchResult, as they arrive
  done: null, // SearchDone, once the search ended
  controller: null, // aborts the running search's stream
  peer: null, // the peer whose page is shown
  peerFiles: [],
};

// ---- the Search page ----------------------------------------------------------------

$("search-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  runSearch($("search-input").value.trim());
});

function searchStatus(text, error) {
  const s = $("search-status");
  s.textContent = text;
  s.classList.toggle("error", !!error);
}

async function runSearch(query) {
  if (finder.controller) finder.controller.abort();
  const controller = new AbortController();
  finder.controller = controller;
  finder.query = query;
  finder.results = new Map();
  finder.done = null;
  renderSearch();
  searchStatus("Searching…");
  $("search-submit").disabled = true;
  try {
    const res = await fetch("/api/search", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": state.csrf || "" },
      body: JSON.stringify({ query }),
      signal: controller.signal,
    });
    if (!res.ok) {
      const data = await res.json().catch(() => null);
      if (res.status === 401) showLogin("Your session ended: log in again.");
      throw new Error((data && data.message) || `HTTP ${res.status}`);
    }
    await readLines(res, (line) => {
      if (finder.controller !== controller) return;
      if (line.event === "progress") {
        finder.results.set(line.cid, line);
        renderSearch();
        searchStatus(`Searching… ${finder.results.size} found so far`);
      } else if (line.event === "done") {
        finder.done = line;
        renderSearch();
        searchStatus(searchSummary(line));
      } else if (line.event === "error") {
        throw new Error(line.message);
      }
    });
  } catch (e) {
    if (e.name !== "AbortError" && finder.controller === controller) searchStatus(e.message, true);
  } finally {
    if (finder.controller === controller) {
      finder.controller = null;
      $("search-submit").disabled = false;
    }
  }
}

// Calls `each` with every JSON line of a streamed answer, as it arrives.
async function readLines(res, each) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffered.indexOf("\n")) >= 0) {
      const text = buffered.slice(0, end).trim();
      buffered = buffered.slice(end + 1);
      if (text) each(JSON.parse(text));
    }
  }
}

function searchSummary(done) {
  const n = done.results.length;
  const secs = (done.elapsed_ms / 1000).toFixed(1);
  let text = `${n} file${n === 1 ? "" : "s"} found; ${done.peers_answered} of ${done.peers_asked} peer${done.peers_asked === 1 ? "" : "s"} answered in ${secs} s`;
  if (done.rejected_entries) text += ` · ${done.rejected_entries} forged entr${done.rejected_entries === 1 ? "y" : "ies"} dropped`;
  if (done.timed_out) text += " · some peers did not answer in time";
  return text;
}

// The results best first: the daemon's ranking once the search ended; before that, more
// sources first.
function searchRows() {
  if (finder.done) return finder.done.results;
  return [...finder.results.values()].sort((a, b) => b.sources - a.sources || a.name.localeCompare(b.name));
}

function renderSearch() {
  const rows = searchRows().map((r) => resultRow(r, true));
  $("search-body").replaceChildren(...rows);
  const empty = $("search-empty");
  empty.hidden = rows.length > 0;
  if (finder.done && !rows.length) empty.textContent = `No files match “${finder.query}”.`;
  else if (!finder.query) empty.textContent = "Search the files other nodes share: every entry is signed by the peer that lists it.";
}

function peerLink(id) {
  return h("a", { href: `#/peer/${id}`, class: "peer-link", title: id }, h("code", {}, short(id, 6)));
}

// One row of a result table: name, size, sources (search) or date (peer page), CID,
// and the download button or its progress.
function resultRow(r, withSources) {
  const sourceCell = withSources
    ? h("td", { "data-label": "Sources", class: "sources" },
      h("details", {},
        h("summary", {}, `${r.sources} source${r.sources === 1 ? "" : "s"}`),
        h("ul", { class: "source-list" }, r.publishers.map((p) => h("li", {}, peerLink(p))))))
    : h("td", { "data-label": "Added", class: "num" }, new Date(r.added_unix * 1000).toLocaleDateString());
  return h("tr", { "data-cid": r.cid },
    h("td", { "data-label": "Name", class: "file-name", title: r.media_type }, r.folder ? `📁 ${r.name}/` : r.name),
    h("td", { "data-label": "Size", class: "num" }, bytes(r.size)),
    sourceCell,
    h("td", { "data-label": "CID" }, h("span", { class: "cid-cell" },
      h("code", { class: "cid", title: r.cid }, r.cid),
      h("button", { type: "button", class: "small copy", onclick: () => copy(r.cid) }, "Copy"))),
    h("td", { class: "actions get" }, getCell(r)));
}

// What the last cell shows: Download, the download's progress, or where the file is.
function getCell(r) {
  const mine = state.files.find((f) => f.cid === r.cid && f.state === "complete");
  const d = state.downloads.get(r.cid);
  if (mine || (d && d.state === "done")) {
    return h("span", { class: "got" },
      h("span", { class: "pill good" }, "in My files"),
      h("a", { class: "button small", href: `/api/files/${r.cid}/content`, download: r.name, "data-action": "save" }, "Save"));
  }
  if (d && (d.state === "finding" || d.state === "downloading") && !d.paused) {
    const pct = d.size > 0 ? Math.floor((100 * d.bytes_done) / d.size) : 0;
    const bar = h("div", { class: "bar", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": pct, "aria-label": `downloading ${r.name}` }, h("div"));
    bar.firstElementChild.style.width = `${pct}%`;
    return h("span", { class: "getting" }, bar, h("span", { class: "num small" }, `${pct}%`));
  }
  const label = d && d.state === "failed" ? "Retry" : "Download";
  return h("button", { type: "button", class: "small primary", "data-action": "download", onclick: (ev) => getFile(r, ev.target) }, label);
}

async function getFile(r, button) {
  button.disabled = true;
  try {
    const d = await api("POST", "/api/downloads", { cid: r.cid });
    state.downloads.set(d.cid, d);
    renderDownloads();
    toast(`Downloading ${r.name}`);
  } catch (e) {
    toast(e.message);
    button.disabled = false;
  }
  redrawGets();
}

// app.js calls this when a download changes (live events) or the file list reloads.
function findingChanged() {
  redrawGets();
}

function redrawGets() {
  for (const [table, list] of [["search-body", searchRows()], ["peer-files-body", finder.peerFiles]]) {
    for (const row of $(table).querySelectorAll("tr[data-cid]")) {
      const r = list.find((x) => x.cid === row.dataset.cid);
      if (r) row.querySelector("td.get").replaceChildren(getCell(r));
    }
  }
}

// ---- a peer's page ------------------------------------------------------------------

async function loadPeerPage(id) {
  if (!id) return;
  const same = finder.peer === id;
  finder.peer = id;
  $("peer-title").textContent = id;
  const known = state.peers.find((p) => p.peer_id === id);
  $("peer-agent").textContent = known && known.agent ? known.agent : "";
  if (!same) {
    finder.peerFiles = [];
    renderPeerFiles();
  }
  $("peer-status").textContent = "Asking the peer for its files…";
  $("peer-status").classList.remove("error");
  try {
    const r = await api("POST", "/api/browse", { peer: id });
    if (finder.peer !== id) return;
    finder.peerFiles = r.files;
    renderPeerFiles();
    let text = `${r.files.length} file${r.files.length === 1 ? "" : "s"} listed`;
    if (!r.complete) text += ` (the first ${r.files.length} of ${r.total})`;
    if (r.rejected_entries) text += ` · ${r.rejected_entries} forged entr${r.rejected_entries === 1 ? "y" : "ies"} dropped`;
    $("peer-status").textContent = text;
  } catch (e) {
    if (finder.peer !== id) return;
    $("peer-status").textContent = e.message;
    $("peer-status").classList.add("error");
  }
}

function renderPeerFiles() {
  const rows = finder.peerFiles.map((r) => resultRow(r, false));
  $("peer-files-body").replaceChildren(...rows);
  $("peer-files-empty").hidden = rows.length > 0 || !$("peer-status").textContent.includes("listed");
}

// ---- the catalog card of My files ---------------------------------------------------

async function refreshCatalog() {
  try {
    renderCatalog(await api("GET", "/api/catalog"));
  } catch (e) {
    refreshFailed(e);
  }
}

function renderCatalog(c) {
  $("catalog-summary").textContent =
    `${c.listed} file${c.listed === 1 ? "" : "s"} listed · ${c.keywords_announced} of ${c.keywords} keyword${c.keywords === 1 ? "" : "s"} announced`;
  $("catalog-browse").checked = c.browse;
}

$("catalog-browse").addEventListener("change", async (ev) => {
  const browse = ev.target.checked;
  try {
    renderCatalog(await api("PUT", "/api/catalog", { browse }));
    toast(browse ? "Peers may browse your listed files" : "Peers can no longer browse your files (search still finds them)");
  } catch (e) {
    ev.target.checked = !browse;
    toast(e.message);
  }
});

async function setListed(f, listed) {
  const name = f.name || f.cid;
  try {
    const r = await api("POST", `/api/files/${f.cid}/${listed ? "list" : "unlist"}`);
    toast(!listed ? `${name} is unlisted: fetchable by CID only`
      : r.in_catalog ? `${name} is listed` : `${name} is listed, but not in the catalog while ${r.reason}`);
  } catch (e) {
    toast(e.message);
  }
  refreshFiles();
  refreshCatalog();
}
