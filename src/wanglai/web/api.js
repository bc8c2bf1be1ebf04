// REST calls with the bearer token. A refusal throws an ApiError carrying the server's code.

export class ApiError extends Error {
  constructor(code, message, status = 0, retryAfter = null) {
    super(message);
    this.code = code;
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

export class Api {
  constructor(base = "") {
    this.base = base;
    this.token = null;
    this.onUnauthorized = () => {};
  }

  async request(method, path, { body, query, headers = {}, raw } = {}) {
    let url = this.base + path;
    if (query) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) params.set(k, v);
      const qs = params.toString();
      if (qs) url += "?" + qs;
    }
    const init = { method, headers: { ...headers } };
    if (this.token) init.headers.Authorization = `Bearer ${this.token}`;
    if (raw !== undefined) {
      init.body = raw;
    } else if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(url, init);
    } catch (err) {
      throw new ApiError("network", "The server could not be reached. Check the connection.", 0);
    }
    if (resp.status === 204) return null;
    const type = resp.headers.get("Content-Type") || "";
    if (!resp.ok) {
      let code = "http_" + resp.status;
      let message = resp.statusText || "Request failed.";
      if (type.includes("json")) {
        const data = await resp.json().catch(() => null);
        if (data && data.error) ({ code, message } = data.error);
      }
      const error = new ApiError(code, message, resp.status, resp.headers.get("Retry-After"));
      if (resp.status === 401 && (code === "invalid_token" || code === "unauthenticated") && this.token) {
        this.onUnauthorized(error);
      }
      throw error;
    }
    if (type.includes("json")) return resp.json();
    return resp.blob();
  }

  get(path, query) { return this.request("GET", path, { query }); }
  post(path, body, headers) { return this.request("POST", path, { body, headers }); }
  patch(path, body) { return this.request("PATCH", path, { body }); }
  put(path, body) { return this.request("PUT", path, { body }); }
  del(path) { return this.request("DELETE", path); }
  /** A POST that moves money: the same key on every retry of one payment. */
  pay(path, body, key) { return this.request("POST", path, { body, headers: { "Idempotency-Key": key } }); }

  upload(blob, type) {
    return this.request("POST", "/v1/media", { raw: blob, headers: { "Content-Type": type } });
  }
}

export const MEDIA_TYPES = new Set([
  "image/jpeg", "image/png", "image/gif", "image/webp", "audio/ogg", "audio/webm", "audio/mpeg",
  "audio/mp4", "video/mp4", "application/pdf", "text/plain", "application/zip",
]);
