// Settings: profile, who may message me, this account's devices (revoke the others).

import { h, clear, clock } from "../dom.js";
import { act, field } from "../ui.js";

export function settingsView(app) {
  const { api, store } = app;
  const name = h("input", { "data-test": "profile-name", maxlength: "64", value: store.me?.name || "" });
  const policy = h("select", { "data-test": "dm-policy" },
    h("option", { value: "friends", selected: store.me?.dm_policy !== "anyone" }, "Friends only"),
    h("option", { value: "anyone", selected: store.me?.dm_policy === "anyone" }, "Anyone"));
  const save = h("button", { type: "submit", "data-test": "save-profile" }, "Save");
  const profile = h("form", { class: "form" }, field("Display name", name), field("Who may message me", policy), save);
  profile.addEventListener("submit", (e) => {
    e.preventDefault();
    act(save, async () => {
      const me = await api.patch("/v1/me", { name: name.value, dm_policy: policy.value });
      store.saveSession({ ...store.session, user: me });
      const meEl = document.querySelector('[data-test="me"]');
      if (meEl) meEl.textContent = me.name ? `${me.name} (${me.phone})` : me.phone;
    });
  });
  const devices = h("ul", { class: "list", "data-test": "devices" });
  async function load() {
    await act(null, async () => {
      const list = await api.get("/v1/devices");
      clear(devices);
      for (const d of list) {
        devices.append(h("li", { "data-test": "device", "data-device-id": d.id, "data-current": d.current ? "true" : "false" },
          h("span", { class: "grow" }, `${d.name || "Device " + d.id}${d.current ? " (this device)" : ""}`),
          h("span", { class: "muted" }, `last seen ${clock(d.last_seen_at || d.created_at)}`),
          d.current ? null : h("button", { type: "button", class: "danger", "data-test": "revoke", onclick: (e) => act(e.currentTarget, async () => {
            await api.del(`/v1/devices/${d.id}`);
            await load();
          }) }, "Log out")));
      }
    });
  }
  load();
  const el = h("div", { class: "page settings" },
    h("section", {}, h("h2", {}, "Profile"), h("p", { class: "muted" }, store.me?.phone || ""), profile),
    h("section", {}, h("h2", {}, "Devices"), devices),
    h("section", {}, h("h2", {}, "Session"),
      h("button", { type: "button", "data-test": "logout-all", onclick: () => app.logout() }, "Log out of this device")));
  return { el, cleanup: () => {} };
}
