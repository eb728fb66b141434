// p2pd web UI: the Relays page. Loaded after app.js and built on its helpers (h, $, api,
// toast, short, duration, bytes, refreshFailed). It lists the relays this node holds, seeks or
// routes through (GET /api/relays: reservation, since when, when it expires, circuits), lets the owner
// add one by its multiaddr (POST /api/relays) or drop one (DELETE /api/relays/{peer}),
// and, on a node that is itself a relay, shows the reservations it holds (with their
// expiry) and the circuits it carries against its limits.
"use strict";

const RELAYS_REFRESH_MS = 5000;

(function buildRelaysPage() {
  const page = h("section", { id: "page-relays", class: "page", hidden: true },
    h("h1", {}, "Relays"),
    h("form", { id: "relay-form", class: "card inline-form wide-form" },
      h("input", { id: "relay-addr", class: "mono", required: true, "aria-label": "Relay address",
        placeholder: "Relay address, /ip4/…/tcp/…/p2p/12D3Koo…" }),
      h("button", { id: "relay-submit", type: "submit", class: "primary" }, "Add relay")),
    h("p", { id: "relay-error", class: "error", role: "alert" }),
    h("div", { class: "card" },
      h("h2", {}, "Relays in use"),
      h("table", { class: "table", id: "relays-table" },
        h("thead", {}, h("tr", {},
          h("th", {}, "Relay"), h("th", {}, "From"), h("th", {}, "Reservation"), h("th", {}, "Since"), h("th", {}, "Expires"),
          h("th", {}, "Circuits now / in all"), h("th", {}, "Carried ↑ / ↓"), h("th", {}, "Circuit limit"), h("th", {}))),
        h("tbody", { id: "relays-body" })),
      h("p", { id: "relays-empty", class: "empty" }, "No relays in use. A node reachable directly needs none; add one to be reachable through it anyway."),
      h("p", { class: "muted small" }, "An added relay is held even while this node is reachable directly, until dropped or the daemon restarts (--relay keeps one across restarts). libp2p renews a reservation before it expires; the expiry is read from the relay's answer to a refresh this node sends after each renewal.")),
    h("div", { id: "relay-server", class: "card", hidden: true },
      h("h2", {}, "This node as a relay"),
      h("p", { id: "relay-server-state", class: "muted" }),
      h("dl", { class: "facts" },
        h("dt", {}, "Reservations"), h("dd", {}, h("div", { id: "relay-reservations-bar", class: "bar", role: "meter" }, h("div")),
          h("span", { id: "relay-reservations", class: "num" })),
        h("dt", {}, "Circuits"), h("dd", {}, h("div", { id: "relay-circuits-bar", class: "bar", role: "meter" }, h("div")),
          h("span", { id: "relay-circuits", class: "num" })),
        h("dt", {}, "Since start"), h("dd", { id: "relay-totals", class: "num" })),
      h("h3", {}, "Reservations held"),
      h("ul", { id: "relay-held-list", class: "addr-list mono" }),
      h("h3", {}, "Circuits"),
      h("ul", { id: "relay-circuit-list", class: "addr-list mono" })));
  document.querySelector("main").append(page);
  const nav = document.querySelector('#nav a[data-page="peers"]');
  nav.after(h("a", { href: "#/relays", "data-page": "relays" }, "Relays"));
})();

const since = (unix) => (unix ? `${duration(Date.now() / 1000 - unix)} ago` : "–");
const until = (unix) => {
  const left = unix - Date.now() / 1000;
  return left >= 0 ? `in ${duration(left)}` : `expired ${duration(-left)} ago`;
};
const unixDate = (unix) => new Date(unix * 1000).toLocaleString();

function expiryCell(r) {
  if (r.expires_unix) {
    return h("td", { "data-label": "Expires", "data-expires": r.expires_unix, title: unixDate(r.expires_unix) }, until(r.expires_unix));
  }
  return h("td", { "data-label": "Expires", title: r.expiry_error || "" }, r.expiry_error ? "unknown" : "–");
}

function relayRow(r) {
  const limit = [r.circuit_limit_secs ? duration(r.circuit_limit_secs) : null,
    r.circuit_limit_bytes ? bytes(r.circuit_limit_bytes) : null].filter(Boolean).join(", ") || "–";
  const state = h("span", { class: `pill ${r.reservation === "accepted" ? "good" : r.reservation === "failed" ? "bad" : ""}`,
    title: r.error || "" }, r.reservation);
  const drop = r.origin === "other" ? null : h("button", { type: "button", class: "small danger", "data-action": "drop-relay",
    onclick: () => dropRelay(r.peer_id) }, "Drop");
  return h("tr", { "data-peer": r.peer_id, "data-reservation": r.reservation },
    h("td", { "data-label": "Relay" }, h("code", { class: "peer-id", title: `${r.peer_id}${r.addr ? `\n${r.addr}` : ""}` }, short(r.peer_id, 8))),
    h("td", { "data-label": "From" }, r.origin),
    h("td", { "data-label": "Reservation" }, state, r.error ? h("small", { class: "muted" }, ` ${r.error}`) : null),
    h("td", { "data-label": "Since" }, since(r.accepted_unix)),
    expiryCell(r),
    h("td", { "data-label": "Circuits now / in all", class: "num" }, `${r.circuits_open} / ${r.circuits_total}`),
    h("td", { "data-label": "Carried ↑ / ↓", class: "num" }, `${bytes(r.bytes_sent)} / ${bytes(r.bytes_received)}`),
    h("td", { "data-label": "Circuit limit" }, limit),
    h("td", { class: "actions" }, drop));
}

function meter(id, used, max) {
  const bar = $(`${id}-bar`);
  bar.setAttribute("aria-valuenow", used);
  bar.setAttribute("aria-valuemax", max);
  bar.firstElementChild.style.width = `${max > 0 ? Math.min(100, (100 * used) / max) : 0}%`;
  $(id).textContent = `${used} / ${max}`;
}

function renderRelays(view) {
  $("relays-body").replaceChildren(...view.relays.map(relayRow));
  $("relays-empty").hidden = view.relays.length > 0;
  const s = view.server;
  $("relay-server").hidden = !s;
  if (!s) return;
  $("relay-server-state").textContent = s.state === "serving" ? "Serving: peers behind NAT can reserve a slot and be reached through this node."
    : `Disabled: ${s.reason || ""}`;
  meter("relay-reservations", s.reservations, s.max_reservations);
  meter("relay-circuits", s.circuits_open, s.max_circuits);
  $("relay-totals").textContent = `${s.reservations_accepted} reservations and ${s.circuits_accepted} circuits accepted, ${s.reservations_denied} and ${s.circuits_denied} refused`;
  $("relay-held-list").replaceChildren(...s.held.map((r) =>
    h("li", { "data-peer": r.peer_id, "data-expires": r.expires_unix, title: `${r.peer_id}\nexpires ${unixDate(r.expires_unix)}` },
      `${short(r.peer_id, 6)}, expires ${until(r.expires_unix)}`)));
  $("relay-circuit-list").replaceChildren(...s.circuits.map((c) =>
    h("li", { title: `${c.src} → ${c.dst}` }, `${short(c.src, 6)} → ${short(c.dst, 6)}, ${since(c.since_unix)}`)));
}

async function loadRelays() { renderRelays(await api("GET", "/api/relays")); }

// Never rejects: see refreshFailed.
function refreshRelays() { return loadRelays().catch(refreshFailed); }

async function dropRelay(peer) {
  if (!confirm(`Drop relay ${short(peer, 8)}? Its reservation is given back and it is not picked again.`)) return;
  try {
    renderRelays(await api("DELETE", `/api/relays/${encodeURIComponent(peer)}`));
    toast("Relay dropped");
  } catch (e) {
    toast(e.message);
  }
}

$("relay-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("relay-error").textContent = "";
  try {
    renderRelays(await api("POST", "/api/relays", { addr: $("relay-addr").value.trim() }));
    $("relay-addr").value = "";
    toast("Relay added: asking it for a reservation");
  } catch (e) {
    $("relay-error").textContent = e.message;
  }
});

setInterval(() => {
  if (!$("app").hidden && !$("page-relays").hidden) refreshRelays();
}, RELAYS_REFRESH_MS);
