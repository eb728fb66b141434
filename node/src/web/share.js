// p2pd web UI: the Shares page. Loaded after app.js and built on its helpers (h, api,
// copy, toast, bytes, duration, refreshFailed). It makes a share of one of this node's
// files (with an expiry and a password if wanted), lists each share's ticket with a copy
// button and its QR code (an SVG the daemon draws), revokes shares, and fetches a file
// by a ticket someone sent: the daemon dials the ticket's provider, proves the password
// if asked, then downloads as for a CID.
"use strict";

const shares = { list: [], files: [] };

// The page, added to <main> so that index.html only needs its nav link and script tag.
(function buildSharesPage() {
  const expiry = h("select", { id: "share-expires", "aria-label": "Expires" },
    h("option", { value: "" }, "never"),
    h("option", { value: "3600" }, "in 1 hour"),
    h("option", { value: "86400" }, "in 1 day"),
    h("option", { value: "604800" }, "in 7 days"));
  const page = h("section", { id: "page-shares", class: "page", hidden: true },
    h("h1", {}, "Shares"),
    h("div", { class: "grid" },
      h("form", { id: "share-form", class: "card" },
        h("h2", {}, "Share a file with someone"),
        h("label", { for: "share-cid" }, "File"),
        h("select", { id: "share-cid", required: true }),
        h("label", { for: "share-expires" }, "Ends"),
        expiry,
        h("label", { for: "share-password" }, "Password (optional; the file then stops being announced)"),
        h("input", { id: "share-password", type: "password", autocomplete: "new-password" }),
        h("button", { id: "share-submit", type: "submit", class: "primary" }, "Make a ticket"),
        h("p", { id: "share-error", class: "error", role: "alert" })),
      h("form", { id: "ticket-form", class: "card" },
        h("h2", {}, "Fetch by ticket"),
        h("label", { for: "ticket-input" }, "Ticket"),
        h("textarea", { id: "ticket-input", class: "mono", rows: 3, placeholder: "p2pd1…", required: true }),
        h("label", { for: "ticket-password" }, "Password, if the share has one"),
        h("input", { id: "ticket-password", type: "password", autocomplete: "off" }),
        h("button", { id: "ticket-submit", type: "submit", class: "primary" }, "Download"),
        h("p", { id: "ticket-error", class: "error", role: "alert" }))),
    h("div", { id: "shares-list", class: "list" }),
    h("p", { id: "shares-empty", class: "empty" }, "No shares. Make a ticket above."));
  document.querySelector("main").append(page);
})();

// Never rejects: see refreshFailed.
function refreshShares() { return loadShares().catch(refreshFailed); }

async function loadShares() {
  const [list, files] = await Promise.all([api("GET", "/api/shares"), api("GET", "/api/files")]);
  shares.list = list;
  shares.files = files.filter((f) => f.state === "complete");
  renderShareForm();
  renderShares();
}

function renderShareForm() {
  const select = $("share-cid");
  const wanted = select.value || (location.hash.match(/^#\/shares\/(\w+)/) || [])[1];
  select.replaceChildren(...shares.files.map((f) =>
    h("option", { value: f.cid, selected: f.cid === wanted }, `${f.name || "(unnamed)"} (${bytes(f.size)})`)));
}

function shareCard(s) {
  const ends = s.expires_unix === null ? "never ends"
    : s.expired ? "expired" : `ends in ${duration(s.expires_unix - Date.now() / 1000)}`;
  const ticketId = `ticket-${s.id}`;
  return h("div", { class: "card share", "data-id": s.id, "data-cid": s.cid },
    h("div", { class: "share-body" },
      h("div", { class: "share-text" },
        h("div", { class: "download-head" },
          h("span", { class: "download-name" }, s.name),
          h("span", { class: "num" }, bytes(s.size))),
        h("div", { class: "download-meta" },
          h("span", { class: "share-ends" }, ends),
          s.password ? h("span", { class: "pill" }, "password") : null),
        h("code", { id: ticketId, class: "mono break ticket" }, s.ticket),
        h("span", { class: "actions" },
          h("button", { type: "button", class: "small copy", "data-action": "copy-ticket", onclick: () => copy(s.ticket) }, "Copy ticket"),
          h("button", { type: "button", class: "small danger", "data-action": "revoke", onclick: () => revokeShare(s) }, "Revoke"))),
      h("img", { class: "qr", src: `/api/shares/${s.id}/qr`, alt: `QR code of the ticket for ${s.name}`, width: 180, height: 180 })));
}

function renderShares() {
  $("shares-list").replaceChildren(...shares.list.slice().reverse().map(shareCard));
  $("shares-empty").hidden = shares.list.length > 0;
}

async function revokeShare(s) {
  if (!confirm(`Revoke this share of ${s.name}? Its ticket stops working.`)) return;
  try {
    await api("DELETE", `/api/shares/${s.id}`);
    toast(`Share of ${s.name} revoked`);
  } catch (e) {
    toast(e.message);
  }
  refreshShares();
}

$("share-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("share-error").textContent = "";
  const expires = $("share-expires").value;
  const password = $("share-password").value;
  try {
    const s = await api("POST", "/api/shares", {
      cid: $("share-cid").value,
      expires_secs: expires ? Number(expires) : null,
      password: password || null,
    });
    $("share-password").value = "";
    shares.list.push(s);
    renderShares();
    toast(`Ticket ready for ${s.name}`);
  } catch (e) {
    $("share-error").textContent = e.message;
  }
});

$("ticket-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("ticket-error").textContent = "";
  const password = $("ticket-password").value;
  try {
    const opened = await api("POST", "/api/tickets/open", {
      ticket: $("ticket-input").value,
      password: password || null,
    });
    const d = await api("POST", "/api/downloads", { cid: opened.cid });
    state.downloads.set(d.cid, d);
    $("ticket-input").value = "";
    $("ticket-password").value = "";
    location.hash = "#/downloads";
  } catch (e) {
    $("ticket-error").textContent = e.message;
  }
});
