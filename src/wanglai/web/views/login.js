// The login screen: phone → code (on a development server it is in data/sms.log) → token.

import { h } from "../dom.js";
import { act, showError, field } from "../ui.js";

export function loginView(app) {
  const phone = h("input", { "data-test": "phone", type: "tel", autocomplete: "tel", required: true,
    placeholder: "+86 138 0013 8000", id: "login-phone" });
  const code = h("input", { "data-test": "code", inputmode: "numeric", autocomplete: "one-time-code",
    maxlength: "6", placeholder: "6 digits", id: "login-code" });
  const status = h("p", { class: "status", "aria-live": "polite" });
  let normalised = null;

  const sendCode = h("button", { type: "button", "data-test": "send-code" }, "Send code");
  sendCode.addEventListener("click", () =>
    act(sendCode, async () => {
      const answer = await app.api.post("/v1/auth/code", { phone: phone.value.trim() });
      normalised = answer.phone;
      status.textContent = `A code was sent to ${answer.phone}` +
        (answer.channel === "console" ? " (written to data/sms.log on this development server)." : ".");
      code.focus();
    }));

  const signIn = h("button", { type: "submit", "data-test": "sign-in", class: "primary" }, "Sign in");
  const form = h("form", { class: "login-form", novalidate: true },
    h("h1", {}, "往来 Wanglai"),
    h("p", { class: "muted" }, "Sign in with your phone number."),
    field("Phone number", phone),
    sendCode,
    field("Code", code),
    h("p", { class: "hint", "data-test": "code-hint" },
      "Development server: the SMS is not sent, the code is written to data/sms.log in the server's directory."),
    status,
    signIn);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    act(signIn, async () => {
      if (!code.value.trim()) throw { code: "invalid_code_format", message: "Enter the 6-digit code." };
      const answer = await app.api.post("/v1/auth/login", {
        phone: normalised || phone.value.trim(),
        code: code.value.trim(),
        device_name: deviceName(),
      });
      app.store.saveSession({ token: answer.token, user: answer.user, device_id: answer.device_id });
      app.signedIn();
    });
  });
  phone.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      sendCode.click();
    }
  });
  setTimeout(() => phone.focus(), 0);
  return h("div", { class: "login", "data-test": "login" }, form);
}

function deviceName() {
  const ua = navigator.userAgent;
  const browser = /Firefox\//.test(ua) ? "Firefox" : /Edg\//.test(ua) ? "Edge" : /Chrome\//.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : "Browser";
  return `Web (${browser})`.slice(0, 64);
}

export { showError };
