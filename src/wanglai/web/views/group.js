// Group info: members and roles, invite friends, rename, make admin, remove, leave.

import { h } from "../dom.js";
import { act, openDialog, closeDialog, replaceDialogBody, field } from "../ui.js";

export async function groupInfoDialog(app, convId) {
  const { store, api } = app;
  const group = await act(null, () => store.loadGroup(convId));
  if (!group) return;
  openDialog(group.title, membersBody(app, group));
}

function membersBody(app, group) {
  const { store, api } = app;
  const me = store.me.id;
  const mine = group.role;
  const refresh = async () => {
    const fresh = await store.loadGroup(group.id);
    replaceDialogBody(membersBody(app, fresh));
  };
  const rows = group.members.map((m) => {
    const canRemove = m.user !== me && (mine === "owner" || (mine === "admin" && m.role === "member"));
    return h("li", { class: "member-row", "data-test": "group-member-row", "data-user-id": m.user, "data-role": m.role },
      h("span", {}, m.user === me ? `${store.userName(m.user)} (you)` : store.userName(m.user)),
      h("span", { class: "muted" }, m.role),
      mine === "owner" && m.user !== me && m.role === "member"
        ? h("button", { type: "button", "data-test": "make-admin", onclick: (e) => act(e.currentTarget, async () => {
          await api.put(`/v1/groups/${group.id}/admins/${m.user}`);
          await refresh();
        }) }, "Make admin") : null,
      mine === "owner" && m.role === "admin"
        ? h("button", { type: "button", "data-test": "remove-admin", onclick: (e) => act(e.currentTarget, async () => {
          await api.del(`/v1/groups/${group.id}/admins/${m.user}`);
          await refresh();
        }) }, "Remove admin") : null,
      canRemove ? h("button", { type: "button", "data-test": "remove-member", onclick: (e) => act(e.currentTarget, async () => {
        await api.del(`/v1/groups/${group.id}/members/${m.user}`);
        await refresh();
      }) }, "Remove") : null);
  });
  const admin = mine === "owner" || mine === "admin";
  return h("div", { class: "group-info" },
    group.announcement ? h("p", { class: "announcement" }, group.announcement) : null,
    h("p", { class: "muted" }, `${group.members.length} members · you are ${mine}`),
    h("ul", { class: "members", "data-test": "group-members" }, rows),
    h("div", { class: "row" },
      h("button", { type: "button", "data-test": "invite", onclick: () => inviteBody(app, group) }, "Invite"),
      admin ? h("button", { type: "button", "data-test": "rename", onclick: () => renameBody(app, group) }, "Rename") : null,
      h("button", { type: "button", class: "danger", "data-test": "leave", onclick: (e) => act(e.currentTarget, async () => {
        await api.post(`/v1/groups/${group.id}/leave`);
        store.conversations.delete(group.id);
        closeDialog();
        app.navigate("chats", { open: null });
      }) }, "Leave group")));
}

async function inviteBody(app, group) {
  const { api, store } = app;
  const friends = await act(null, () => api.get("/v1/friends"));
  if (!friends) return;
  const inGroup = new Set(group.members.map((m) => m.user));
  const candidates = friends.filter((f) => !inGroup.has(f.user.id));
  candidates.forEach((f) => store.rememberUser(f.user));
  const confirm = h("button", { type: "submit", class: "primary", "data-test": "confirm" }, "Invite");
  const form = h("form", { class: "form" },
    candidates.length ? h("ul", { class: "pick" }, candidates.map((f) => h("li", {}, h("label", {},
      h("input", { type: "checkbox", "data-test": "group-member", value: f.user.id }), " ", f.user.name || f.user.phone))))
      : h("p", { class: "empty" }, "All your friends are in this group."),
    confirm);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    act(confirm, async () => {
      const ids = [...form.querySelectorAll("input:checked")].map((i) => Number(i.value));
      if (!ids.length) throw { code: "no_users", message: "Choose at least one friend." };
      const answer = await api.post(`/v1/groups/${group.id}/members`, { user_ids: ids });
      const fresh = await store.loadGroup(group.id);
      replaceDialogBody(membersBody(app, fresh));
      if (answer.requested?.length) {
        document.querySelector(".group-info")?.prepend(h("p", { class: "status" }, "Invitations sent for approval."));
      }
    });
  });
  replaceDialogBody(form);
}

function renameBody(app, group) {
  const title = h("input", { "data-test": "group-title", value: group.title, maxlength: "64" });
  const confirm = h("button", { type: "submit", class: "primary", "data-test": "confirm" }, "Rename");
  const form = h("form", { class: "form" }, field("Title", title), confirm);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    act(confirm, async () => {
      await app.api.patch(`/v1/groups/${group.id}`, { title: title.value });
      const fresh = await app.store.loadGroup(group.id);
      replaceDialogBody(membersBody(app, fresh));
    });
  });
  replaceDialogBody(form);
  title.focus();
}
