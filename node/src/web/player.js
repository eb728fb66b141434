// p2pd web UI: the Open/Play button of a file, complete or still downloading. Loaded
// after app.js and built on its helpers (h, $, toast). Media the browser can play
// (guessed from the file name, asked of the browser with canPlayType) opens in a
// <video> or <audio> element in a dialog, fed by GET /api/files/{cid}/content: the
// daemon answers the player's Range requests and fetches the asked-for chunks first,
// so playback starts before the download ends. Anything else is downloaded.
"use strict";

// Extensions and the media type a player is asked about.
const PLAYABLE = {
  mp4: "video/mp4", m4v: "video/mp4", webm: "video/webm", ogv: "video/ogg", mov: "video/quicktime",
  mkv: "video/x-matroska", mp3: "audio/mpeg", m4a: "audio/mp4", aac: "audio/aac", ogg: "audio/ogg",
  oga: "audio/ogg", opus: "audio/ogg; codecs=opus", flac: "audio/flac", wav: "audio/wav", weba: "audio/webm",
};

// "video" or "audio" if this browser says it can play a file of this name, else null.
function playableKind(name) {
  const ext = (name || "").toLowerCase().split(".").pop();
  const type = PLAYABLE[ext];
  if (!type) return null;
  const kind = type.startsWith("video/") ? "video" : "audio";
  return document.createElement(kind).canPlayType(type) ? kind : null;
}

const player = (function buildPlayer() {
  const title = h("h2", { id: "player-title", class: "player-title" });
  const slot = h("div", { id: "player-slot", class: "player-slot" });
  const save = h("a", { id: "player-save", class: "button small" }, "Save");
  const close = h("button", { type: "button", class: "small", "data-action": "close-player" }, "Close");
  const dialog = h("dialog", { id: "player", class: "card player", "aria-labelledby": "player-title" },
    title, slot, h("div", { class: "actions" }, save, close));
  const stop = () => {
    for (const m of slot.querySelectorAll("video, audio")) { m.pause(); m.removeAttribute("src"); m.load(); }
    slot.replaceChildren();
  };
  close.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", stop);
  document.body.append(dialog);
  return { dialog, title, slot, save, stop };
})();

// Opens a file: plays it if the browser can, else downloads it.
function openFile(cid, name) {
  const url = `/api/files/${encodeURIComponent(cid)}/content`;
  const kind = playableKind(name);
  if (!kind) {
    const a = h("a", { href: url, download: name || cid, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    toast(`Saving ${name || cid}`);
    return;
  }
  player.stop();
  player.title.textContent = name || cid;
  player.save.setAttribute("href", url);
  player.save.setAttribute("download", name || cid);
  const media = h(kind, { src: url, controls: true, autoplay: true, preload: "auto", class: "player-media" });
  media.addEventListener("error", () => toast("The browser cannot play this file; use Save"));
  player.slot.append(media);
  player.dialog.showModal();
}

// The button app.js puts on a file row and a download card.
function openButton(cid, name) {
  const kind = playableKind(name);
  return h("button", {
    type: "button", class: "small", "data-action": "open",
    title: kind ? `Play in the browser (${kind}); it streams while it downloads` : "Download to this computer",
    onclick: () => openFile(cid, name),
  }, kind ? "Play" : "Open");
}
