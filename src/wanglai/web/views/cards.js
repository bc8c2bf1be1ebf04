// Money in a chat: transfer and red-packet cards (accept, open, see claims) and the dialogs
// that send them. Every money POST carries an Idempotency-Key kept for the dialog's retries.

import { h, money, parseYuan, uid } from "../dom.js";
import { act, openDialog, closeDialog, field, showError } from "../ui.js";

export function transferCard(app, msg) {
  const { store, api } = app;
  const b = msg.body;
  const transfer = store.transfers.get(b.transfer);
  if (!transfer) store.refreshTransfer(b.transfer).catch(() => {});
  const state = transfer?.state || "pending";
  const receiver = transfer ? transfer.receiver : null;
  const canAccept = transfer && state === "pending" && receiver === store.me.id;
  const key = uid("accept");
  return h("div", { class: `card transfer-card state-${state}`, "data-test": "transfer-card", "data-state": state },
    h("strong", {}, `Transfer ${money(b.amount)}`),
    b.note ? h("span", {}, b.note) : null,
    h("span", { class: "muted" }, { pending: "Waiting to be accepted", accepted: "Accepted", declined: "Declined", returned: "Returned" }[state] || state),
    canAccept ? h("div", { class: "row" },
      h("button", { type: "button", class: "primary", "data-test": "accept-transfer", onclick: (e) => act(e.currentTarget, async () => {
        const t = await api.pay(`/v1/wallet/transfers/${b.transfer}/accept`, undefined, key);
        store.transfers.set(t.id, t);
        store.emit("cards");
      }) }, "Accept"),
      h("button", { type: "button", "data-test": "decline-transfer", onclick: (e) => act(e.currentTarget, async () => {
        const t = await api.pay(`/v1/wallet/transfers/${b.transfer}/decline`, undefined, uid("decline"));
        store.transfers.set(t.id, t);
        store.emit("cards");
      }) }, "Decline")) : null);
}

export function redpacketCard(app, msg) {
  const { store, api } = app;
  const b = msg.body;
  const packet = store.packets.get(b.packet);
  const opened = packet && (packet.mine || packet.sender === store.me.id);
  const card = h("div", { class: "card redpacket-card", "data-test": "redpacket-card", "data-packet": b.packet },
    h("strong", {}, "🧧 " + (b.greeting || "Red packet")),
    h("span", { class: "muted" }, b.kind === "single" ? "Red packet" : `${b.shares} shares, ${b.kind}`));
  if (!opened) {
    card.append(h("button", { type: "button", class: "primary", "data-test": "open-redpacket", onclick: (e) => act(e.currentTarget, async () => {
      try {
        if (app.live?.connected) await app.live.request({ t: "claim", id: uid("claim"), packet: b.packet });
        else await api.post(`/v1/redpackets/${b.packet}/claim`);
      } catch (err) {
        if (!["own_packet", "packet_empty", "packet_expired"].includes(err.code)) throw err;
        showError(err);
      }
      await store.refreshPacket(b.packet);
    }) }, "Open"));
  }
  if (packet && (opened || packet.claims.length)) card.append(claimsList(store, packet));
  return card;
}

function claimsList(store, packet) {
  return h("div", { class: "claims", "data-test": "redpacket-claims" },
    packet.mine ? h("p", {}, `You got ${money(packet.mine.amount)}`) : null,
    h("p", { class: "muted" }, `${packet.claimed_count}/${packet.shares} claimed, ${money(packet.claimed_amount)} of ${money(packet.amount)} · ${packet.state}`),
    h("ul", {}, packet.claims.map((c) => h("li", { "data-test": "redpacket-claim", "data-user-id": c.user },
      `${store.userName(c.user)}: ${money(c.amount)}${packet.luckiest === c.user ? " 👑" : ""}`))));
}

function pinField() {
  return h("input", { "data-test": "pin", type: "password", inputmode: "numeric", maxlength: "6",
    autocomplete: "off", placeholder: "6 digits (if needed)" });
}

export function transferDialog(app, conv) {
  const amount = h("input", { "data-test": "amount", inputmode: "decimal", placeholder: "0.00" });
  const note = h("input", { "data-test": "note", maxlength: "140" });
  const pin = pinField();
  const confirm = h("button", { type: "submit", class: "primary", "data-test": "confirm" }, "Send");
  let key = uid("transfer");
  const form = h("form", { class: "form" }, field("Amount (¥)", amount), field("Note", note), field("Payment PIN", pin), confirm);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    act(confirm, async () => {
      const fen = parseYuan(amount.value);
      if (!fen) throw { code: "invalid_amount", message: "Enter an amount like 12.50." };
      const body = { to: conv.peer, amount: fen };
      if (note.value.trim()) body.note = note.value.trim();
      if (pin.value) body.pin = pin.value;
      try {
        await app.api.pay("/v1/wallet/transfers", body, key);
      } catch (err) {
        if (err.code === "idempotency_key_reused") key = uid("transfer");
        throw err;
      }
      closeDialog();
    });
  });
  openDialog("Send money", form);
}

export function redpacketDialog(app, conv) {
  const group = conv.kind === "group";
  const kind = h("select", { "data-test": "redpacket-kind" },
    group ? [h("option", { value: "lucky" }, "Lucky (random shares)"), h("option", { value: "equal" }, "Equal shares")]
      : [h("option", { value: "single" }, "Single")]);
  const amount = h("input", { "data-test": "amount", inputmode: "decimal", placeholder: "0.00" });
  const shares = h("input", { "data-test": "shares", type: "number", min: "1", max: "100", value: group ? String(Math.min(10, app.store.groups.get(conv.id)?.members.length || 2)) : "1",
    disabled: !group });
  const greeting = h("input", { "data-test": "greeting", maxlength: "64", placeholder: "恭喜发财，大吉大利" });
  const pin = pinField();
  const confirm = h("button", { type: "submit", class: "primary", "data-test": "confirm" }, "Send red packet");
  let key = uid("packet");
  const form = h("form", { class: "form" }, field("Kind", kind), field("Total amount (¥)", amount),
    field("Shares", shares), field("Greeting", greeting), field("Payment PIN", pin), confirm);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    act(confirm, async () => {
      const fen = parseYuan(amount.value);
      if (!fen) throw { code: "invalid_amount", message: "Enter an amount like 8.88." };
      const body = { conv: conv.id, kind: kind.value, amount: fen };
      if (group) body.shares = Number(shares.value);
      if (greeting.value.trim()) body.greeting = greeting.value.trim();
      if (pin.value) body.pin = pin.value;
      try {
        const packet = await app.api.pay("/v1/redpackets", body, key);
        app.store.packets.set(packet.id, packet);
      } catch (err) {
        if (err.code === "idempotency_key_reused") key = uid("packet");
        throw err;
      }
      closeDialog();
    });
  });
  openDialog("Send a red packet", form);
}
