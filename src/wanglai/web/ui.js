// Dialogs and error messages: one dialog at a time, one error at a time (in the dialog if open).

import { h, clear } from "./dom.js";

let current = null; // {el, previousFocus, onClose}

export function openDialog(title, body, { onClose } = {}) {
  closeDialog();
  const panel = h(
    "div",
    { class: "dialog", "data-test": "dialog", role: "dialog", "aria-modal": "true", "aria-label": title },
    h("header", { class: "dialog-head" }, h("h2", {}, title),
      h("button", { class: "icon", type: "button", "aria-label": "Close", onclick: () => closeDialog() }, "×")),
    h("div", { class: "dialog-body" }, body),
  );
  const backdrop = h("div", { class: "backdrop", onclick: (e) => e.target === backdrop && closeDialog() }, panel);
  current = { el: backdrop, previousFocus: document.activeElement, onClose };
  document.body.append(backdrop);
  const first = panel.querySelector("input, select, textarea, button:not(.icon)");
  (first || panel).focus();
  return panel;
}

export function replaceDialogBody(body) {
  if (!current) return;
  clear(current.el.querySelector(".dialog-body")).append(body);
}

export function closeDialog() {
  if (!current) return;
  const { el, previousFocus, onClose } = current;
  current = null;
  el.remove();
  onClose?.();
  if (previousFocus && document.contains(previousFocus)) previousFocus.focus();
}

export function dialogOpen() {
  return current !== null;
}

document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && current) {
    e.preventDefault();
    closeDialog();
  }
});

/** Show an error (an ApiError, an error frame or a message) where the user is looking. */
export function showError(err) {
  document.querySelectorAll('[data-test="error"]').forEach((el) => el.remove());
  const code = err?.code || "error";
  const message = err?.message || String(err);
  const el = h("div", { class: "error", "data-test": "error", role: "alert", "data-code": code },
    h("span", {}, message),
    h("button", { class: "icon", type: "button", "aria-label": "Dismiss", onclick: () => el.remove() }, "×"));
  const host = current ? current.el.querySelector(".dialog-body") : document.getElementById("errors");
  (host || document.body).prepend(el);
  if (!current) setTimeout(() => el.remove(), 8000);
  return el;
}

export function clearError() {
  document.querySelectorAll('[data-test="error"]').forEach((el) => el.remove());
}

/** Run an async action from a button: disable it meanwhile, show any error. */
export async function act(button, fn) {
  if (button) button.disabled = true;
  try {
    clearError();
    return await fn();
  } catch (err) {
    showError(err);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

export function field(label, input) {
  return h("label", { class: "field" }, h("span", {}, label), input);
}
