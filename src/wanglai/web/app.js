// The entry point: picks the login screen or the app shell, and owns the live connection.

import { Api } from "./api.js";
import { Store } from "./store.js";
import { Live } from "./socket.js";
import { h, clear } from "./dom.js";
import { showError, closeDialog } from "./ui.js";
import { loginView } from "./views/login.js";
import { chatsView } from "./views/chats.js";
import { contactsView } from "./views/contacts.js";
import { walletView } from "./views/wallet.js";
import { settingsView } from "./views/settings.js";

const api = new Api();
const store = new Store(api);
const root = document.getElementById("root");

export const app = {
  api,
  store,
  live: null,
  view: "chats",
  viewCleanup: null,
  navigate,
  openChat,
  logout,
  signedIn,
};

api.onUnauthorized = (err) => {
  showError(err);
  endSession();
};

function endSession() {
  app.live?.stop();
  app.live = null;
  store.clearSession();
  closeDialog();
  showLogin();
}

function showLogin() {
  app.viewCleanup?.();
  app.viewCleanup = null;
  clear(root).append(loginView(app));
}

async function logout() {
  try {
    await api.post("/v1/auth/logout");
  } catch {
    // the session ends here whatever the server said
  }
  endSession();
}

async function signedIn() {
  renderShell();
  try {
    const me = await api.get("/v1/me");
    store.saveSession({ ...store.session, user: me });
    renderMe();
    let cursor = store.savedCursor;
    if (cursor === null) {
      // A new device starts at the log's head: the REST snapshot below holds the state so far.
      const head = await api.get("/v1/sync", { since: 0, limit: 1 });
      cursor = head.head;
    }
    await store.loadConversations();
    startLive(cursor);
  } catch (err) {
    if (store.session) showError(err);
  }
}

function startLive(cursor) {
  app.live?.stop();
  const live = new Live(api, cursor, {
    onEvent: (event) => store.apply(event),
    onCursor: (seq) => store.saveCursor(seq),
    onState: (state) => setConnection(state),
    onFrame: (frame) => {
      if (frame.t === "typing") store.typingFrame(frame);
      else if (frame.t === "error") showError(frame);
    },
    onRevoked: () => {
      showError({ code: "device_revoked", message: "This device was logged out. Sign in again." });
      endSession();
    },
  });
  app.live = live;
  live.start();
}

function setConnection(state) {
  const el = document.querySelector('[data-test="connection"]');
  if (!el) return;
  el.dataset.state = state;
  el.title = { online: "Connected", offline: "Offline: reconnecting", connecting: "Connecting…" }[state];
  el.querySelector(".label").textContent = { online: "online", offline: "offline", connecting: "connecting" }[state];
}

function renderMe() {
  const el = document.querySelector('[data-test="me"]');
  if (el && store.me) el.textContent = store.me.name ? `${store.me.name} (${store.me.phone})` : store.me.phone;
}

const NAV = [
  ["chats", "Chats"],
  ["contacts", "Contacts"],
  ["wallet", "Wallet"],
  ["settings", "Settings"],
];

function renderShell() {
  const nav = h("nav", { class: "nav", "aria-label": "Main" },
    NAV.map(([key, label]) =>
      h("button", { type: "button", "data-test": `nav-${key}`, "data-view": key, onclick: () => navigate(key) }, label)));
  const shell = h("div", { class: "shell", "data-test": "app" },
    h("header", { class: "topbar" },
      h("strong", { class: "brand" }, "往来 Wanglai"),
      h("span", { class: "me", "data-test": "me" }, store.me?.phone || ""),
      h("span", { class: "connection", "data-test": "connection", "data-state": "connecting" },
        h("span", { class: "dot", "aria-hidden": "true" }), h("span", { class: "label" }, "connecting")),
      h("button", { type: "button", class: "quiet", "data-test": "logout", onclick: () => logout() }, "Log out")),
    nav,
    h("section", { class: "view", id: "view" }));
  clear(root).append(shell);
  navigate(app.view);
}

function navigate(view, arg) {
  const host = document.getElementById("view");
  if (!host) return;
  app.viewCleanup?.();
  app.viewCleanup = null;
  app.view = view;
  document.querySelectorAll(".nav button").forEach((b) => {
    if (b.dataset.view === view) b.setAttribute("aria-current", "page");
    else b.removeAttribute("aria-current");
  });
  const build = { chats: chatsView, contacts: contactsView, wallet: walletView, settings: settingsView }[view];
  const { el, cleanup } = build(app, arg);
  app.viewCleanup = cleanup;
  clear(host).append(el);
}

function openChat(convId) {
  navigate("chats", { open: convId });
}

if (store.loadSession()) signedIn();
else showLogin();
