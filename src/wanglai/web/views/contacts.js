// Contacts: find people by phone, friend requests, friends (message, block), blocks, new group.

import { h, clear } from "../dom.js";
import { act, field } from "../ui.js";

export function contactsView(app) {
  const { api, store } = app;
  const phone = h("input", { type: "tel", "data-test": "contact-phone", placeholder: "+86 138 0013 8000",
    "aria-label": "Phone number" });
  const find = h("button", { type: "submit", "data-test": "find-contact" }, "Find");
  const result = h("div", { class: "result" });
  const requests = h("ul", { class: "list" });
  const outgoing = h("ul", { class: "list" });
  const friendsList = h("ul", { class: "list", "aria-label": "Friends" });
  const blocksList = h("ul", { class: "list" });
  const groupForm = h("div", { class: "group-form" });
  let picking = false;

  const findForm = h("form", { class: "row" }, phone, find);
  findForm.addEventListener("submit", (e) => {
    e.preventDefault();
    act(find, async () => {
      clear(result);
      const user = await api.post("/v1/contacts/lookup", { phone: phone.value.trim() });
      store.rememberUser(user);
      result.append(h("div", { class: "contact-result", "data-test": "contact-result", "data-user-id": user.id },
        h("span", {}, user.name ? `${user.name} · ${user.phone}` : user.phone),
        user.id === store.me.id ? h("span", { class: "muted" }, "(you)") :
          h("button", { type: "button", "data-test": "add-friend", onclick: (ev) => act(ev.currentTarget, async () => {
            const req = await api.post("/v1/friends/requests", { user_id: user.id });
            ev.target.textContent = req.state === "accepted" ? "Friends now" : "Request sent";
            ev.target.disabled = true;
            await load();
          }) }, "Add friend")));
    });
  });

  const newGroup = h("button", { type: "button", "data-test": "new-group", onclick: () => {
    picking = !picking;
    renderGroupForm();
    load();
  } }, "New group");

  function renderGroupForm() {
    clear(groupForm);
    if (!picking) return;
    const title = h("input", { "data-test": "group-title", maxlength: "64", placeholder: "Group name" });
    const create = h("button", { type: "submit", class: "primary", "data-test": "create-group" }, "Create group");
    const form = h("form", { class: "row" }, field("Group name", title), create,
      h("button", { type: "button", onclick: () => { picking = false; renderGroupForm(); load(); } }, "Cancel"));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      act(create, async () => {
        const members = [...friendsList.querySelectorAll('input[data-test="group-member"]:checked')].map((i) => Number(i.value));
        const group = await api.post("/v1/groups", { title: title.value, members });
        picking = false;
        await store.refreshConversation(group.id);
        app.openChat(group.id);
      });
    });
    groupForm.append(h("p", { class: "muted" }, "Tick the friends to add, then create."), form);
    title.focus();
  }

  async function load() {
    await act(null, async () => {
      const [reqs, friends, blocks] = await Promise.all([
        api.get("/v1/friends/requests"), api.get("/v1/friends"), api.get("/v1/blocks")]);
      clear(requests);
      for (const r of reqs.incoming) {
        store.rememberUser(r.sender);
        requests.append(h("li", { "data-test": "friend-request", "data-request-id": r.id, "data-user-id": r.sender.id },
          h("span", {}, (r.sender.name || r.sender.phone) + (r.note ? ` — “${r.note}”` : "")),
          h("button", { type: "button", class: "primary", "data-test": "accept-request", onclick: (e) => act(e.currentTarget, async () => {
            await api.post(`/v1/friends/requests/${r.id}/accept`);
            await load();
          }) }, "Accept"),
          h("button", { type: "button", "data-test": "decline-request", onclick: (e) => act(e.currentTarget, async () => {
            await api.post(`/v1/friends/requests/${r.id}/decline`);
            await load();
          }) }, "Decline")));
      }
      if (!reqs.incoming.length) requests.append(h("li", { class: "empty" }, "No requests."));
      clear(outgoing);
      for (const r of reqs.outgoing) outgoing.append(h("li", { "data-test": "outgoing-request" }, r.recipient.name || r.recipient.phone, h("span", { class: "muted" }, " pending")));
      clear(friendsList);
      for (const f of friends) {
        store.rememberUser(f.user);
        friendsList.append(h("li", { "data-test": "friend", "data-user-id": f.user.id },
          picking ? h("input", { type: "checkbox", "data-test": "group-member", value: f.user.id,
            "aria-label": `Add ${f.user.name || f.user.phone}` }) : null,
          h("span", { class: "grow" }, f.user.name ? `${f.user.name} · ${f.user.phone}` : f.user.phone),
          h("button", { type: "button", "data-test": "message-friend", onclick: (e) => act(e.currentTarget, async () => {
            const conv = await api.post("/v1/conversations/direct", { user_id: f.user.id });
            await store.refreshConversation(conv.id);
            app.openChat(conv.id);
          }) }, "Message"),
          h("button", { type: "button", class: "danger", "data-test": "block", onclick: (e) => act(e.currentTarget, async () => {
            await api.post("/v1/blocks", { user_id: f.user.id });
            await load();
          }) }, "Block")));
      }
      if (!friends.length) friendsList.append(h("li", { class: "empty" }, "No friends yet: find someone by phone number."));
      clear(blocksList);
      for (const b of blocks) {
        blocksList.append(h("li", { "data-test": "blocked", "data-user-id": b.user.id },
          h("span", { class: "grow" }, b.user.name || b.user.phone),
          h("button", { type: "button", "data-test": "unblock", onclick: (e) => act(e.currentTarget, async () => {
            await api.del(`/v1/blocks/${b.user.id}`);
            await load();
          }) }, "Unblock")));
      }
    });
  }

  const el = h("div", { class: "page contacts" },
    h("section", {}, h("h2", {}, "Find people"), findForm, result),
    h("section", {}, h("h2", {}, "Friend requests"), requests, outgoing),
    h("section", {}, h("div", { class: "section-head" }, h("h2", {}, "Friends"), newGroup), groupForm, friendsList),
    h("section", {}, h("h2", {}, "Blocked"), blocksList));
  load();
  const unsubscribe = store.subscribe((topic) => { if (topic === "contacts") load(); });
  return { el, cleanup: unsubscribe };
}
