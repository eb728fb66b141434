// The reputation table of the peers page (docs/reputation.md): every peer this node has
// dealt with, connected or not, with its score, counters, ban and reason, and a trend
// line drawn from the score history the ledger keeps. Uses app.js's helpers (api, h,
// $, bytes, short); refreshes itself while the peers page is shown.
"use strict";

const REPUTATION_REFRESH_MS = 5000;
const SVG_NS = "http://www.w3.org/2000/svg";

function trendLine(history) {
  const width = 80, height = 20;
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("class", "trend");
  if (!history || history.length < 2) return svg;
  const t0 = history[0][0], t1 = history[history.length - 1][0];
  const span = Math.max(1, t1 - t0);
  const points = history.map(([t, score]) =>
    `${((t - t0) / span * (width - 2) + 1).toFixed(1)},${((100 - score) / 200 * (height - 2) + 1).toFixed(1)}`);
  const line = document.createElementNS(SVG_NS, "polyline");
  line.setAttribute("points", points.join(" "));
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "currentColor");
  line.setAttribute("stroke-width", "1.5");
  const title = document.createElementNS(SVG_NS, "title");
  title.textContent = history.map(([t, s]) => `${new Date(t * 1000).toLocaleString()}: ${s.toFixed(1)}`).join("\n");
  svg.append(title, line);
  return svg;
}

function reputationRow(p) {
  const ban = p.banned
    ? h("span", { class: "pill bad", title: p.banned_until ? `until ${new Date(p.banned_until * 1000).toLocaleString()}` : "" },
      `banned: ${p.ban_reason || "misbehaved"}`)
    : p.taker ? h("span", { class: "pill warn", title: "refuses our requests and gives nothing back: optimistic slot only" }, "takes, gives nothing")
      : h("span", { class: "muted" }, "–");
  return h("tr", { "data-peer": p.peer_id },
    h("td", { "data-label": "Peer" }, h("code", { class: "peer-id", title: p.peer_id }, short(p.peer_id, 8))),
    h("td", { "data-label": "Score", class: "num" }, p.score.toFixed(1)),
    h("td", { "data-label": "Trend" }, trendLine(p.history)),
    h("td", { "data-label": "Received", class: "num" }, bytes(p.received)),
    h("td", { "data-label": "Sent", class: "num" }, bytes(p.sent)),
    h("td", { "data-label": "Corrupt / failed / refused / choked", class: "num" },
      `${p.corrupt_chunks} / ${p.failures} / ${p.refusals} / ${p.chokes ?? 0}`),
    h("td", { "data-label": "Standing" }, ban));
}

async function refreshReputation() {
  if ($("app").hidden || $("page-peers").hidden) return;
  try {
    const table = await api("GET", "/api/reputation");
    $("reputation-body").replaceChildren(...table.map(reputationRow));
    $("reputation-empty").hidden = table.length > 0;
  } catch {
    // The peers page shows connection trouble already; try again on the next tick.
  }
}

window.addEventListener("hashchange", () => setTimeout(refreshReputation, 0));
setInterval(refreshReputation, REPUTATION_REFRESH_MS);
setTimeout(refreshReputation, 500);
