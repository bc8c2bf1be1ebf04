// The chats screen: the conversation list (live: last message, unread, muted), search, and the
// open chat beside it (one column under 700px).

import { h, clear, clock } from "../dom.js";
import { act } from "../ui.js";
import { chatPane, preview } from "./chat.js";

export function chatsView(app, arg) {
  const { store } = app;
  const list = h("div", { class: "conv-list", role: "list", "aria-label": "Conversations" });
  const results = h("div", { class: "search-results", "aria-live": "polite" });
  const search = h("input", { type: "search", "data-test": "search", placeholder: "Search messages",
    "aria-label": "Search messages" });
  const paneHost = h("div", { class: "chat-host" });
  const root = h("div", { class: "chats" },
    h("aside", { class: "sidebar" }, h("div", { class: "sidebar-head" }, search), results, list),
    paneHost);
  let pane = null;

  function renderList() {
    const focused = document.activeElement?.closest?.('[data-test="conversation"]')?.dataset.convId;
    clear(list);
    const convs = store.sortedConversations();
    if (!convs.length) list.append(h("p", { class: "empty" }, "No conversations yet. Find people under Contacts."));
    for (const conv of convs) {
      const item = h("button", {
        type: "button", class: "conv", role: "listitem", "data-test": "conversation", "data-conv-id": conv.id,
        "data-muted": conv.muted ? "true" : null,
        "aria-current": store.openConv === conv.id ? "true" : null,
        onclick: () => open(conv.id),
      },
      h("span", { class: "conv-title", "data-test": "conv-title" }, store.convTitle(conv)),
      h("span", { class: "conv-time" }, conv.last ? clock(conv.last.at) : ""),
      h("span", { class: "conv-last", "data-test": "conv-last" }, conv.last ? preview(store, conv.last) : ""),
      conv.muted ? h("span", { class: "muted-icon", title: "Muted", "aria-label": "Muted" }, "🔕") : null,
      conv.unread > 0 ? h("span", { class: "unread", "data-test": "unread", "aria-label": `${conv.unread} unread` }, String(conv.unread)) : null);
      list.append(item);
    }
    if (focused) list.querySelector(`[data-conv-id="${focused}"]`)?.focus();
  }

  function open(convId) {
    pane?.cleanup();
    store.openConv = convId;
    root.classList.toggle("has-chat", convId !== null);
    clear(paneHost);
    pane = null;
    if (convId !== null && store.conversations.has(convId)) {
      pane = chatPane(app, convId, { back: () => open(null) });
      paneHost.append(pane.el);
    } else {
      store.openConv = null;
      root.classList.remove("has-chat");
      paneHost.append(h("div", { class: "placeholder" }, "Choose a conversation."));
    }
    renderList();
    return pane;
  }

  let searchTimer = null;
  async function runSearch() {
    const q = search.value.trim();
    clear(results);
    if (!q) return;
    await act(null, async () => {
      const found = await app.api.get("/v1/search", { q, limit: 50 });
      clear(results);
      if (!found.length) results.append(h("p", { class: "empty" }, "Nothing found."));
      for (const msg of found) {
        const conv = store.conversations.get(msg.conv);
        results.append(h("button", { type: "button", class: "search-result", "data-test": "search-result",
          "data-conv-id": msg.conv, "data-seq": msg.seq,
          onclick: async () => {
            search.value = "";
            clear(results);
            const p = open(msg.conv);
            await p?.reveal(msg.seq);
          } },
        h("span", { class: "conv-title" }, conv ? store.convTitle(conv) : `Conversation ${msg.conv}`),
        h("span", { class: "conv-last" }, preview(store, msg))));
      }
    });
  }
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(runSearch, 300);
  });
  search.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      clearTimeout(searchTimer);
      runSearch();
    } else if (e.key === "Escape") {
      search.value = "";
      clear(results);
    }
  });

  const unsubscribe = store.subscribe((topic, detail) => {
    if (topic === "conversations" || topic === "users") renderList();
    if (topic === "closed" && detail === store.openConv) open(null);
    if (topic === "message" && detail.sender !== store.me?.id && detail.conv !== store.openConv) {
      app.live?.sendFrame({ t: "delivered", conv: detail.conv, seq: detail.seq });
    }
  });

  open(arg?.open ?? (store.openConv && store.conversations.has(store.openConv) ? store.openConv : null));
  return {
    el: root,
    cleanup: () => {
      unsubscribe();
      pane?.cleanup();
      store.openConv = null;
    },
  };
}
