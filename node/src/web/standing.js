// "How others see me", a panel of the peers page (docs/reputation.md): asks the
// connected peers, through GET /api/reputation/mine, how they see this node, and shows
// each one's answer: its score for us, the bytes each way, a ban and its reason. An
// answer is only that peer's claim. Asked when the peers page opens and on the button,
// not on a timer: each peer answers a node only a few times a minute. Builds its own
// card below the reputation table; uses app.js's helpers (api, h, $, bytes, short).
"use strict";

function standingRow(p) {
  let view;
  if (p.answer === "known") {
    view = p.banned
      ? h("span", { class: "pill bad", title: p.banned_until ? `until ${new Date(p.banned_until * 1000).toLocaleString()}` : "" },
        `banned: ${p.ban_reason || "misbehaved"}`)
      : h("span", { class: "pill good" }, "in good standing");
  } else if (p.answer === "unknown") {
    view = h("span", { class: "muted" }, "does not know us yet");
  } else if (p.answer === "rate_limited") {
    view = h("span", { class: "muted" }, `asked too often; again in ${p.retry_after_secs ?? "?"} s`);
  } else {
    view = h("span", { class: "muted", title: p.error || "" }, "no answer");
  }
  const known = p.answer === "known";
  return h("tr", { "data-peer": p.peer_id },
    h("td", { "data-label": "Peer" }, h("code", { class: "peer-id", title: p.peer_id }, short(p.peer_id, 8))),
    h("td", { "data-label": "Its score for us", class: "num" }, known ? p.score.toFixed(1) : "–"),
    h("td", { "data-label": "It sent us", class: "num" }, known ? bytes(p.sent_to_me) : "–"),
    h("td", { "data-label": "We sent it", class: "num" }, known ? bytes(p.received_from_me) : "–"),
    h("td", { "data-label": "Corrupt / timeouts / refused", class: "num" },
      known ? `${p.corrupt_chunks} / ${p.timeouts} / ${p.refusals}` : "–"),
    h("td", { "data-label": "Standing" }, view));
}

function standingCard() {
  let card = $("standing-card");
  if (card) return card;
  const button = h("button", { type: "button", id: "standing-ask", onclick: () => askStanding() }, "Ask peers");
  card = h("div", { class: "card", id: "standing-card" },
    h("h2", {}, "How others see me"),
    h("p", { class: "muted small" }, "Each connected peer says how it sees this node: its score for us, the bytes it counted each way, and any ban with its reason. These are the peers' own claims."),
    button,
    h("table", { class: "table", id: "standing-table" },
      h("thead", {}, h("tr", {},
        ...["Peer", "Its score for us", "It sent us", "We sent it", "Corrupt / timeouts / refused", "Standing"].map((t) => h("th", {}, t)))),
      h("tbody", { id: "standing-body" })),
    h("p", { id: "standing-empty", class: "empty", hidden: true }, "No connected peer to ask."));
  $("page-peers").append(card);
  return card;
}

async function askStanding() {
  if ($("app").hidden || $("page-peers").hidden) return;
  standingCard();
  const button = $("standing-ask");
  if (button.disabled) return;
  button.disabled = true;
  button.textContent = "Asking…";
  try {
    const answers = await api("GET", "/api/reputation/mine");
    $("standing-body").replaceChildren(...answers.map(standingRow));
    $("standing-empty").hidden = answers.length > 0;
  } catch {
    // The peers page shows connection trouble already; the button asks again.
  } finally {
    button.disabled = false;
    button.textContent = "Ask peers";
  }
}

window.addEventListener("hashchange", () => setTimeout(askStanding, 0));
setTimeout(askStanding, 700);
