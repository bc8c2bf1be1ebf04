// One open conversation: history with infinite scroll back, live messages without layout jumps,
// read pointers, typing, replies, mentions, edit, recall, media, voice and the money cards.

import { h, clear, clock, uid } from "../dom.js";
import { MEDIA_TYPES } from "../api.js";
import { act, openDialog, closeDialog, showError, field } from "../ui.js";
import { transferCard, redpacketCard, transferDialog, redpacketDialog } from "./cards.js";
import { groupInfoDialog } from "./group.js";

const SEND_TIMEOUT_MS = 10_000;

export function preview(store, msg) {
  if (msg.recalled) return "Message recalled";
  const b = msg.body || {};
  switch (msg.kind) {
    case "text": return b.text || "";
    case "image": return "[Photo]" + (b.caption ? " " + b.caption : "");
    case "voice": return "[Voice message]";
    case "file": return `[File: ${b.name || "file"}]`;
    case "location": return `[Location${b.label ? ": " + b.label : ""}]`;
    case "contact": return `[Contact: ${store.userName(b.user_id)}]`;
    case "transfer": return "[Transfer]" + (b.note ? " " + b.note : "");
    case "redpacket": return "[Red packet] " + (b.greeting || "");
    case "system": return systemText(store, b);
    default: return `[${msg.kind}]`;
  }
}

function systemText(store, b) {
  const who = (ids) => (ids || []).map((id) => store.userName(id)).join(", ");
  const by = b.by ? store.userName(b.by) : "";
  switch (b.notice) {
    case "created": return `${by} created the group “${b.title}”`;
    case "joined": return `${who(b.users)} joined`;
    case "left": return `${who(b.users)} left`;
    case "removed": return `${by} removed ${who(b.users)}`;
    case "renamed": return `${by} renamed the group to “${b.title}”`;
    case "announcement": return `${by} posted an announcement: ${b.text}`;
    case "approval": return `${by} turned approval ${b.required ? "on" : "off"}`;
    case "role": return `${who(b.users)} is now ${b.role === "admin" ? "an admin" : "a member"}`;
    case "owner": return `${who(b.users)} now owns the group`;
    default: return "Group updated";
  }
}

export function chatPane(app, convId, { back }) {
  const { store, api } = app;
  const conv = () => store.conversations.get(convId);
  const me = store.me.id;
  const isGroup = conv().kind === "group";
  const msgs = store.convMessages(convId);
  const rows = new Map(); // seq -> li
  let replyTo = null;
  let loadingOlder = false;

  const list = h("ol", { class: "messages", "aria-label": "Messages", "aria-live": "polite" });
  const older = h("li", { class: "older" });
  list.append(older);
  const scroller = h("div", { class: "scroller", tabindex: "0" }, list);
  const typingLine = h("div", { class: "typing-line" });
  const replyBar = h("div", { class: "reply-bar", hidden: true });
  const composer = h("textarea", { "data-test": "composer", rows: "1", placeholder: "Message",
    "aria-label": "Message", maxlength: "4000" });
  const sendBtn = h("button", { type: "button", class: "primary", "data-test": "send", onclick: () => submit() }, "Send");
  const attach = h("input", { type: "file", "data-test": "attach", class: "visually-hidden", id: `attach-${convId}`,
    accept: "image/*,audio/*,video/mp4,application/pdf,text/plain,application/zip,*/*" });
  const recordBtn = h("button", { type: "button", "data-test": "record-voice", "aria-pressed": "false",
    title: "Record a voice message" }, "Voice");
  const mentionBox = h("div", { class: "mention-box", hidden: true, role: "listbox" });
  const title = h("h2", { class: "chat-title" }, store.convTitle(conv()));

  const header = h("header", { class: "chat-head" },
    h("button", { type: "button", class: "back", "aria-label": "Back to conversations", onclick: back }, "‹"),
    title,
    h("div", { class: "chat-tools" },
      isGroup ? h("button", { type: "button", "data-test": "group-info", onclick: () => groupInfoDialog(app, convId) }, "Group") : null,
      h("button", { type: "button", "data-test": "mute", onclick: (e) => toggleMute(e.currentTarget) },
        conv().muted ? "Unmute" : "Mute"),
      !isGroup ? h("button", { type: "button", "data-test": "send-transfer", onclick: () => transferDialog(app, conv()) }, "Transfer") : null,
      h("button", { type: "button", "data-test": "send-redpacket", onclick: () => redpacketDialog(app, conv()) }, "Red packet")));

  const el = h("section", { class: "chat", "data-test": "chat", "data-conv-id": convId, "aria-label": "Chat" },
    header, scroller, typingLine, replyBar,
    h("div", { class: "composer" },
      h("label", { class: "button", for: `attach-${convId}`, title: "Attach a photo or file" }, "File", attach),
      recordBtn, mentionBox, composer, sendBtn));

  // --- rendering -----------------------------------------------------------------------------

  function atBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 48;
  }

  function renderMessage(msg) {
    const mine = msg.sender === me;
    const c = conv();
    const attrs = {
      class: `message kind-${msg.kind}${mine ? " mine" : ""}`,
      "data-test": "message",
      "data-seq": msg.seq,
      "data-mine": mine ? "true" : "false",
      "data-recalled": msg.recalled ? "true" : null,
      "data-edited": msg.edited_at ? "true" : null,
      "data-read": mine && c && !isGroup ? (msg.seq <= (c.peer_read_seq || 0) ? "true" : "false") : null,
      id: `m-${convId}-${msg.seq}`,
    };
    if (msg.kind === "system") {
      return h("li", { ...attrs, class: "message system" }, h("span", { "data-test": "message-text" }, preview(store, msg)));
    }
    const b = msg.body || {};
    const mentionsMe = msg.kind === "text" && (b.mentions || []).some((m) => m === me || m === "all");
    const parts = [];
    if (isGroup && !mine) parts.push(h("span", { class: "sender" }, store.userName(msg.sender)));
    if (msg.reply_to) {
      const target = msgs.get(msg.reply_to);
      parts.push(h("a", { class: "reply-quote", "data-test": "reply-quote", href: `#m-${convId}-${msg.reply_to}`,
        onclick: (e) => { e.preventDefault(); reveal(msg.reply_to); } },
      target ? `${store.userName(target.sender)}: ${preview(store, target)}` : `Reply to message ${msg.reply_to}`));
    }
    if (msg.recalled) {
      parts.push(h("p", { class: "message-text tombstone", "data-test": "message-text" }, "This message was recalled."));
    } else {
      parts.push(content(msg, b));
    }
    const meta = h("span", { class: "meta" }, clock(msg.at), msg.edited_at ? " · edited" : "",
      attrs["data-read"] === "true" ? " · read" : mine && !isGroup && msg.seq <= (c?.peer_delivered_seq || 0) ? " · delivered" : "");
    parts.push(meta);
    const li = h("li", attrs, h("div", { class: `bubble${mentionsMe ? " mentioned" : ""}` }, parts));
    li.append(actionsButton(msg));
    return li;
  }

  function content(msg, b) {
    switch (msg.kind) {
      case "text":
        return h("p", { class: "message-text", "data-test": "message-text" }, highlightMentions(b));
      case "image": {
        const img = h("img", { "data-test": "message-image", alt: b.caption || b.name || "Photo",
          width: b.width || null, height: b.height || null, class: "photo" });
        if (b.width && b.height) img.style.aspectRatio = `${b.width} / ${b.height}`;
        store.mediaUrl(b.media).then((url) => (img.src = url), () => (img.alt = "Photo unavailable"));
        return h("figure", {}, img, b.caption ? h("figcaption", { "data-test": "message-text" }, b.caption) : null);
      }
      case "voice": {
        const audio = h("audio", { controls: true, preload: "none" });
        store.mediaUrl(b.media).then((url) => (audio.src = url), () => {});
        return h("div", { class: "voice" }, audio, h("span", { class: "muted" }, `${Math.round((b.duration_ms || 0) / 1000)} s`));
      }
      case "file":
        return h("button", { type: "button", class: "file", onclick: () => download(b) }, `📄 ${b.name || "file"}`);
      case "location":
        return h("p", { class: "message-text", "data-test": "message-text" }, `📍 ${b.label || ""} (${b.lat}, ${b.lon})`);
      case "contact":
        return h("p", { class: "message-text", "data-test": "message-text" }, `👤 ${store.userName(b.user_id)}`);
      case "transfer":
        return transferCard(app, msg);
      case "redpacket":
        return redpacketCard(app, msg);
      default:
        return h("p", { class: "message-text", "data-test": "message-text" }, preview(store, msg));
    }
  }

  function highlightMentions(b) {
    const text = b.text || "";
    if (!b.mentions?.length) return text;
    const parts = text.split(/(@\S+)/g);
    return parts.map((p) => (p.startsWith("@") ? h("span", { class: "mention" }, p) : p));
  }

  async function download(b) {
    const url = await store.mediaUrl(b.media);
    const a = h("a", { href: url, download: b.name || "file" });
    document.body.append(a);
    a.click();
    a.remove();
  }

  function actionsButton(msg) {
    if (msg.kind === "system") return null;
    const c = conv();
    const mine = msg.sender === me;
    const card = msg.kind === "transfer" || msg.kind === "redpacket";
    const canRecall = !msg.recalled && !card && (mine || (isGroup && (c.role === "owner" || c.role === "admin")));
    const canEdit = mine && msg.kind === "text" && !msg.recalled;
    const wrap = h("div", { class: "actions" });
    const button = h("button", { type: "button", class: "icon", "data-test": "message-actions", "aria-haspopup": "menu",
      "aria-label": "Message actions" }, "⋯");
    const close = () => {
      wrap.querySelector(".menu")?.remove();
      button.setAttribute("aria-expanded", "false");
      document.removeEventListener("click", outside, true);
    };
    const outside = (e) => { if (!wrap.contains(e.target)) close(); };
    button.addEventListener("click", () => {
      if (wrap.querySelector(".menu")) return close();
      const item = (test, label, fn) => h("button", { type: "button", role: "menuitem", "data-test": test,
        onclick: () => { close(); fn(); } }, label);
      const menu = h("div", { class: "menu", role: "menu" },
        !msg.recalled ? item("action-reply", "Reply", () => startReply(msg)) : null,
        canEdit ? item("action-edit", "Edit", () => editDialog(msg)) : null,
        canRecall ? item("action-recall", "Recall", () => act(null, async () => {
          const tomb = await api.post(`/v1/conversations/${convId}/messages/${msg.seq}/recall`);
          store.putMessage(tomb);
          store.emit("message", tomb);
        })) : null);
      menu.addEventListener("keydown", (e) => { if (e.key === "Escape") { e.stopPropagation(); close(); button.focus(); } });
      wrap.append(menu);
      button.setAttribute("aria-expanded", "true");
      menu.querySelector("button")?.focus();
      setTimeout(() => document.addEventListener("click", outside, true), 0);
    });
    wrap.append(button);
    return wrap;
  }

  function upsert(msg) {
    if (msg.conv !== convId) return;
    const stick = atBottom();
    const old = rows.get(msg.seq);
    const li = renderMessage(msg);
    if (old) {
      old.replaceWith(li);
    } else {
      const later = [...rows.keys()].filter((s) => s > msg.seq).sort((a, b) => a - b)[0];
      if (later !== undefined) rows.get(later).before(li);
      else list.append(li);
    }
    rows.set(msg.seq, li);
    const pendingHere = list.querySelector(".pending");
    if (pendingHere) list.append(...list.querySelectorAll(".pending")); // pending sends stay last
    if (stick) scroller.scrollTop = scroller.scrollHeight;
  }

  function renderAll() {
    for (const seq of [...msgs.keys()].sort((a, b) => a - b)) upsert(msgs.get(seq));
    older.textContent = store.complete.has(convId) ? "Beginning of the conversation" : "";
  }

  async function loadOlder() {
    if (loadingOlder || store.complete.has(convId)) return;
    loadingOlder = true;
    older.textContent = "Loading…";
    const before = scroller.scrollHeight;
    const top = scroller.scrollTop;
    try {
      await store.loadOlder(convId);
      for (const seq of [...msgs.keys()].sort((a, b) => a - b)) if (!rows.has(seq)) upsert(msgs.get(seq));
      scroller.scrollTop = top + (scroller.scrollHeight - before); // keep what the user sees in place
    } catch (err) {
      showError(err);
    } finally {
      older.textContent = store.complete.has(convId) ? "Beginning of the conversation" : "";
      loadingOlder = false;
    }
  }

  async function reveal(seq) {
    for (let i = 0; i < 40 && !rows.has(seq) && !store.complete.has(convId); i++) await loadOlder();
    const li = rows.get(seq);
    if (!li) return;
    li.scrollIntoView({ block: "center" });
    li.classList.add("flash");
    setTimeout(() => li.classList.remove("flash"), 1500);
  }

  function renderTyping() {
    clear(typingLine);
    const who = store.typers(convId).filter((u) => u !== me);
    if (who.length) {
      typingLine.append(h("span", { "data-test": "typing" },
        `${who.map((u) => store.userName(u)).join(", ")} ${who.length > 1 ? "are" : "is"} typing…`));
    }
  }

  function renderReceipts() {
    for (const [seq, li] of rows) {
      const msg = msgs.get(seq);
      if (msg && msg.sender === me) li.replaceWith(rows.set(seq, renderMessage(msg)).get(seq));
    }
  }

  // --- read pointer --------------------------------------------------------------------------

  let readTimer = null;
  function markRead() {
    clearTimeout(readTimer);
    readTimer = setTimeout(() => {
      const c = conv();
      if (!c || document.visibilityState !== "visible" || !atBottom()) return;
      const newest = Math.max(0, ...msgs.keys());
      if (newest > (c.read_seq || 0)) {
        c.read_seq = newest;
        if (newest >= c.seq) c.unread = 0;
        if (!app.live?.sendFrame({ t: "read", conv: convId, seq: newest })) {
          api.post(`/v1/conversations/${convId}/read`, { seq: newest }).catch(() => {});
        }
        store.emit("conversations");
      }
    }, 300);
  }

  // --- sending -------------------------------------------------------------------------------

  function startReply(msg) {
    replyTo = msg.seq;
    clear(replyBar).append(
      h("span", {}, `Replying to ${store.userName(msg.sender)}: ${preview(store, msg).slice(0, 80)}`),
      h("button", { type: "button", class: "icon", "aria-label": "Cancel reply", onclick: cancelReply }, "×"));
    replyBar.hidden = false;
    composer.focus();
  }

  function cancelReply() {
    replyTo = null;
    replyBar.hidden = true;
    clear(replyBar);
  }

  function mentionsIn(text) {
    if (!isGroup) return [];
    const group = store.groups.get(convId);
    const found = [];
    if (/(^|\s)@all\b/.test(text)) found.push("all");
    for (const m of group?.members || []) {
      const names = [store.userName(m.user), store.users.get(m.user)?.phone].filter(Boolean);
      if (m.user !== me && names.some((n) => text.includes("@" + n))) found.push(m.user);
    }
    return found;
  }

  async function submit() {
    const text = composer.value;
    if (!text.trim()) return;
    const body = { text };
    const mentions = mentionsIn(text);
    if (mentions.length) body.mentions = mentions;
    composer.value = "";
    const reply = replyTo;
    cancelReply();
    const ok = await send("text", body, reply, text);
    if (!ok) composer.value = text;
    composer.focus();
  }

  async function send(kind, body, reply_to, label) {
    const id = uid("c");
    const pending = h("li", { class: "message mine pending", "data-test": "pending-message", "aria-busy": "true" },
      h("div", { class: "bubble" }, h("p", {}, label || preview(store, { kind, body })), h("span", { class: "meta" }, "sending…")));
    const stick = atBottom();
    list.append(pending);
    if (stick) scroller.scrollTop = scroller.scrollHeight;
    const frame = { t: "send", id, conv: convId, kind, body };
    if (reply_to) frame.reply_to = reply_to;
    try {
      let stored = null;
      if (app.live?.connected) {
        stored = await Promise.race([
          app.live.request(frame),
          new Promise((_, reject) => setTimeout(() => reject(new Error("timeout")), SEND_TIMEOUT_MS)),
        ]).catch((err) => {
          if (err instanceof Error) return null; // no answer on the socket: retry over REST, same id
          throw err;
        });
      }
      if (!stored) {
        const rest = { client_id: id, kind, body };
        if (reply_to) rest.reply_to = reply_to;
        stored = await api.post(`/v1/conversations/${convId}/messages`, rest);
      }
      if (stored && stored.kind) {
        store.putMessage(stored);
        store.emit("message", stored);
      }
      return true;
    } catch (err) {
      showError(err);
      return false;
    } finally {
      pending.remove();
    }
  }

  async function sendFile(file) {
    const type = MEDIA_TYPES.has(file.type) ? file.type : "application/octet-stream";
    const uploaded = await api.upload(file, type);
    if (type.startsWith("image/")) {
      const body = { media: uploaded.hash, name: file.name.slice(0, 255) };
      try {
        const bitmap = await createImageBitmap(file);
        body.width = bitmap.width;
        body.height = bitmap.height;
        bitmap.close();
      } catch {
        // dimensions are optional
      }
      return send("image", body, null, `[Photo] ${file.name}`);
    }
    return send("file", { media: uploaded.hash, name: file.name.slice(0, 255) || "file" }, null, `[File: ${file.name}]`);
  }

  attach.addEventListener("change", () => {
    const files = [...attach.files];
    attach.value = "";
    act(null, async () => {
      for (const file of files) await sendFile(file);
    });
  });

  // Voice: MediaRecorder where the browser has it (best effort).
  let recorder = null;
  recordBtn.addEventListener("click", () => act(null, async () => {
    if (recorder) {
      recorder.stop();
      return;
    }
    if (!navigator.mediaDevices?.getUserMedia || typeof MediaRecorder === "undefined") {
      throw { code: "voice_unsupported", message: "This browser cannot record audio." };
    }
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const type = ["audio/webm", "audio/ogg", "audio/mp4"].find((t) => MediaRecorder.isTypeSupported(t));
    const rec = new MediaRecorder(stream, type ? { mimeType: type } : {});
    const chunks = [];
    const started = Date.now();
    rec.ondataavailable = (e) => e.data.size && chunks.push(e.data);
    rec.onstop = () => {
      stream.getTracks().forEach((t) => t.stop());
      recorder = null;
      recordBtn.setAttribute("aria-pressed", "false");
      recordBtn.textContent = "Voice";
      const mime = (rec.mimeType || type || "audio/webm").split(";")[0];
      const blob = new Blob(chunks, { type: mime });
      const duration = Math.min(600_000, Math.max(1, Date.now() - started));
      if (!blob.size) return;
      act(null, async () => {
        const uploaded = await api.upload(blob, mime);
        await send("voice", { media: uploaded.hash, duration_ms: duration }, null, "[Voice message]");
      });
    };
    rec.start();
    recorder = rec;
    recordBtn.setAttribute("aria-pressed", "true");
    recordBtn.textContent = "Stop";
  }));

  // --- composer keys, typing, mentions -------------------------------------------------------

  let lastTyping = 0;
  composer.addEventListener("input", () => {
    const now = Date.now();
    if (composer.value && now - lastTyping > 3000) {
      lastTyping = now;
      if (!app.live?.sendFrame({ t: "typing", conv: convId })) {
        api.post(`/v1/conversations/${convId}/typing`).catch(() => {});
      }
    }
    suggestMentions();
  });
  composer.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      const choice = mentionBox.hidden ? null : mentionBox.querySelector("button");
      if (choice) choice.click();
      else submit();
    } else if (e.key === "Escape") {
      if (!mentionBox.hidden) mentionBox.hidden = true;
      else if (replyTo) cancelReply();
    }
  });

  function suggestMentions() {
    const m = /@([^\s@]*)$/.exec(composer.value.slice(0, composer.selectionStart));
    const group = store.groups.get(convId);
    if (!isGroup || !m || !group) {
      mentionBox.hidden = true;
      return;
    }
    const q = m[1].toLowerCase();
    const names = group.members.filter((x) => x.user !== me).map((x) => store.userName(x.user));
    if (conv().role !== "member") names.unshift("all");
    const hits = names.filter((n) => n.toLowerCase().includes(q)).slice(0, 6);
    clear(mentionBox);
    for (const name of hits) {
      mentionBox.append(h("button", { type: "button", role: "option", onclick: () => {
        const start = composer.selectionStart - m[0].length;
        composer.setRangeText(`@${name} `, start, composer.selectionStart, "end");
        mentionBox.hidden = true;
        composer.focus();
      } }, "@" + name));
    }
    mentionBox.hidden = hits.length === 0;
  }

  // --- edit, mute ----------------------------------------------------------------------------

  function editDialog(msg) {
    const text = h("textarea", { "data-test": "edit-text", rows: "3", maxlength: "4000", value: msg.body.text });
    const save = h("button", { type: "submit", class: "primary", "data-test": "confirm" }, "Save");
    const form = h("form", { class: "form" }, field("Text", text), save);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      act(save, async () => {
        const body = { text: text.value };
        const mentions = mentionsIn(text.value);
        if (mentions.length) body.mentions = mentions;
        const edited = await api.patch(`/v1/conversations/${convId}/messages/${msg.seq}`, { body });
        store.putMessage(edited);
        store.emit("message", edited);
        closeDialog();
      });
    });
    text.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
    });
    openDialog("Edit message", form);
  }

  async function toggleMute(button) {
    await act(button, async () => {
      const c = conv();
      const answer = await api.put(`/v1/conversations/${convId}/mute`, { muted: !c.muted });
      c.muted = answer.muted;
      button.textContent = c.muted ? "Unmute" : "Mute";
      store.emit("conversations");
    });
  }

  // --- wiring --------------------------------------------------------------------------------

  scroller.addEventListener("scroll", () => {
    if (scroller.scrollTop < 150) loadOlder();
    if (atBottom()) markRead();
  });
  const reader = { conv: convId, watching: () => document.visibilityState === "visible" && atBottom() };
  store.reader = reader;
  const onVisible = () => markRead();
  document.addEventListener("visibilitychange", onVisible);
  const unsubscribe = store.subscribe((topic, detail) => {
    if (topic === "message" && detail.conv === convId) {
      upsert(detail);
      markRead();
    } else if (topic === "typing" && detail === convId) renderTyping();
    else if (topic === "receipts" && detail === convId) renderReceipts();
    else if (topic === "users") title.textContent = store.convTitle(conv());
    else if (topic === "conversations" && conv()) title.textContent = store.convTitle(conv());
    else if (topic === "cards") {
      for (const [seq, li] of rows) {
        const msg = msgs.get(seq);
        if (msg && (msg.kind === "transfer" || msg.kind === "redpacket")) li.replaceWith(rows.set(seq, renderMessage(msg)).get(seq));
      }
    }
  });

  (async () => {
    if (isGroup) store.loadGroup(convId).catch(() => {});
    if (!msgs.size) await store.loadOlder(convId).catch(showError);
    renderAll();
    scroller.scrollTop = scroller.scrollHeight;
    // Fill the screen so that scrolling up can load more.
    while (scroller.scrollHeight <= scroller.clientHeight && !store.complete.has(convId)) {
      await loadOlder();
    }
    scroller.scrollTop = scroller.scrollHeight;
    markRead();
  })();
  setTimeout(() => composer.focus(), 0);

  return {
    el,
    reveal,
    cleanup: () => {
      unsubscribe();
      if (store.reader === reader) store.reader = null;
      document.removeEventListener("visibilitychange", onVisible);
      clearTimeout(readTimer);
      if (recorder) recorder.stop();
    },
  };
}
