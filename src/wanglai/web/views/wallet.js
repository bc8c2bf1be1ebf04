// The wallet: balance, statement, top up (bank card or phone bill), pay a merchant code, PIN.

import { h, clear, clock, money, parseYuan, uid } from "../dom.js";
import { act, openDialog, closeDialog, field } from "../ui.js";

const KINDS = {
  topup: "Top-up", withdrawal: "Withdrawal", chat_transfer: "Transfer", redpacket: "Red packet",
  "redpacket.claim": "Red packet received", "redpacket.refund": "Red packet returned",
  merchant_pay: "Payment", merchant_refund: "Refund", adjustment: "Adjustment",
};

export function walletView(app) {
  const { api, store } = app;
  const balance = h("strong", { class: "balance", "data-test": "balance" }, "¥…");
  const available = h("span", { class: "muted" });
  const statement = h("ul", { class: "list statement", "data-test": "statement" });
  const more = h("button", { type: "button", hidden: true, onclick: () => loadStatement(true) }, "Older entries");
  let nextBefore = null;

  async function loadBalance() {
    const b = await store.loadBalance();
    balance.textContent = money(b.balance);
    available.textContent = b.available !== b.balance ? `available ${money(b.available)}` : "";
    pinBtn.textContent = b.pin_set ? "Change PIN" : "Set payment PIN";
  }

  async function loadStatement(older = false) {
    const page = await api.get("/v1/wallet/statement", { before: older ? nextBefore : undefined, limit: 50 });
    if (!older) clear(statement);
    for (const m of page.transfers) {
      const sign = m.direction === "in" ? "+" : "−";
      statement.append(h("li", { class: `statement-row dir-${m.direction} state-${m.state}`, "data-test": "statement-row",
        "data-kind": m.kind, "data-state": m.state },
      h("span", { class: "grow" }, KINDS[m.kind] || m.kind, m.state !== "posted" ? h("span", { class: "muted" }, ` (${m.state})`) : null),
      h("span", { class: "muted" }, clock(m.at)),
      h("span", { class: "amount" }, `${sign}${money(m.amount)}`)));
    }
    if (!older && !page.transfers.length) statement.append(h("li", { class: "empty" }, "No entries yet."));
    nextBefore = page.next_before;
    more.hidden = !nextBefore;
  }

  const refresh = () => act(null, async () => {
    await loadBalance();
    await loadStatement();
  });

  const pinBtn = h("button", { type: "button", "data-test": "set-pin", onclick: () => pinDialog(app, refresh) }, "Set payment PIN");
  const el = h("div", { class: "page wallet" },
    h("section", { class: "balance-card" },
      h("span", { class: "muted" }, "Balance"), balance, available,
      h("div", { class: "row" },
        h("button", { type: "button", class: "primary", "data-test": "topup", onclick: () => topupDialog(app, refresh) }, "Top up"),
        h("button", { type: "button", "data-test": "pay-code", onclick: () => payDialog(app, refresh) }, "Pay a code"),
        pinBtn)),
    h("section", {}, h("h2", {}, "Statement"), statement, more));

  refresh();
  let timer = null;
  const unsubscribe = store.subscribe((topic) => {
    if (topic === "wallet") {
      clearTimeout(timer);
      timer = setTimeout(refresh, 150);
    }
  });
  return { el, cleanup: () => { unsubscribe(); clearTimeout(timer); } };
}

function topupDialog(app, done) {
  const channel = h("select", { "data-test": "channel" },
    h("option", { value: "bank" }, "Bank card"), h("option", { value: "carrier" }, "Phone bill"));
  const amount = h("input", { "data-test": "amount", inputmode: "decimal", placeholder: "100.00" });
  const card = h("input", { "data-test": "card", inputmode: "numeric", value: "4242 4242 4242 4242", maxlength: "23" });
  const cardField = field("Card number", card);
  const status = h("p", { class: "status", "aria-live": "polite" });
  const confirm = h("button", { type: "submit", class: "primary", "data-test": "confirm" }, "Top up");
  channel.addEventListener("change", () => (cardField.hidden = channel.value !== "bank"));
  let key = uid("topup");
  const form = h("form", { class: "form" }, field("From", channel), field("Amount (¥)", amount), cardField, status, confirm);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    act(confirm, async () => {
      const fen = parseYuan(amount.value);
      if (!fen) throw { code: "invalid_amount", message: "Enter an amount like 100 or 12.50." };
      const body = { channel: channel.value, amount: fen };
      if (channel.value === "bank") body.card = card.value;
      let order;
      try {
        order = await app.api.pay("/v1/wallet/topups", body, key);
      } finally {
        key = uid("topup"); // a top-up retry answers the old order: a new attempt needs a new key
      }
      if (order.state === "succeeded") closeDialog();
      else status.textContent = `Order ${order.id} is ${order.state}; the balance updates when it is confirmed.`;
      done();
    });
  });
  openDialog("Top up", form);
}

function payDialog(app, done) {
  const token = h("input", { "data-test": "code-token", placeholder: "wanglai://pay/… or the code", autocomplete: "off" });
  const look = h("button", { type: "button", "data-test": "lookup-code" }, "Look up");
  const info = h("div", { class: "pay-info" });
  const amount = h("input", { "data-test": "amount", inputmode: "decimal", placeholder: "for a code without an amount" });
  const pin = h("input", { "data-test": "pin", type: "password", inputmode: "numeric", maxlength: "6", autocomplete: "off" });
  const confirm = h("button", { type: "submit", class: "primary", "data-test": "confirm" }, "Pay");
  let key = uid("pay");
  const bare = () => token.value.trim().replace(/^wanglai:\/\/pay\//, "");
  look.addEventListener("click", () => act(look, async () => {
    const code = await app.api.get(`/v1/pay/codes/${encodeURIComponent(bare())}`);
    clear(info).append(h("p", { "data-test": "code-info" },
      `${code.merchant}: ${code.amount ? money(code.amount) : "any amount"}${code.description ? " — " + code.description : ""} (${code.state})`));
    if (code.amount) amount.value = (code.amount / 100).toFixed(2);
  }));
  const form = h("form", { class: "form" }, field("Payment code", token), look, info,
    field("Amount (¥)", amount), field("Payment PIN", pin), confirm);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    act(confirm, async () => {
      const body = { code: token.value.trim() };
      const fen = parseYuan(amount.value);
      if (amount.value.trim() && !fen) throw { code: "invalid_amount", message: "Enter an amount like 12.50." };
      if (fen) body.amount = fen;
      if (pin.value) body.pin = pin.value;
      let payment;
      try {
        payment = await app.api.pay("/v1/pay", body, key);
      } catch (err) {
        if (err.code === "idempotency_key_reused") key = uid("pay");
        throw err;
      }
      clear(info).append(h("p", { class: "status", "data-test": "paid" }, `Paid ${money(payment.amount)} to ${payment.merchant}.`));
      done();
      setTimeout(closeDialog, 800);
    });
  });
  openDialog("Pay a code", form);
}

function pinDialog(app, done) {
  const set = app.store.balance?.pin_set;
  const current = h("input", { "data-test": "current-pin", type: "password", inputmode: "numeric", maxlength: "6", autocomplete: "off" });
  const pin = h("input", { "data-test": "pin", type: "password", inputmode: "numeric", maxlength: "6", autocomplete: "off" });
  const confirm = h("button", { type: "submit", class: "primary", "data-test": "confirm" }, "Save PIN");
  const form = h("form", { class: "form" }, set ? field("Current PIN", current) : null, field("New 6-digit PIN", pin), confirm);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    act(confirm, async () => {
      const body = { pin: pin.value };
      if (set) body.current = current.value;
      await app.api.put("/v1/wallet/pin", body);
      closeDialog();
      done();
    });
  });
  openDialog(set ? "Change payment PIN" : "Set payment PIN", form);
}
