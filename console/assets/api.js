// api.js: calls to the scpgate HTTP APIs with the operator's bearer token.
// The token lives in sessionStorage (this tab only) and travels only in the
// Authorization header, never in a URL.

const KEY = "scpgate.token";

export function token() {
  return sessionStorage.getItem(KEY) || "";
}

export function setToken(t) {
  if (t) sessionStorage.setItem(KEY, t);
  else sessionStorage.removeItem(KEY);
}

// ApiError carries the HTTP status and the API's {error, code} body.
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
  }
}

let asking = null; // the pending token prompt, shared by concurrent calls
let declined = false; // the operator cancelled the prompt: do not ask again on every poll

// Forget and Cancel close the dialog without submitting its form, so that
// Enter in the field always means "Use token".
for (const b of document.querySelectorAll('#token-form button[type="button"]')) {
  b.addEventListener("click", () => document.getElementById("token-dialog").close(b.value));
}

// askToken opens the token dialog once and resolves when it closes, true
// when a token was given.
export function askToken(why) {
  if (asking) return asking;
  const dlg = document.getElementById("token-dialog");
  document.getElementById("token-why").textContent = why || "The API needs a bearer token.";
  const input = document.getElementById("token-input");
  input.value = "";
  asking = new Promise((resolve) => {
    dlg.addEventListener("close", () => {
      if (dlg.returnValue === "save" && input.value.trim()) setToken(input.value.trim());
      if (dlg.returnValue === "clear") setToken("");
      declined = dlg.returnValue !== "save";
      input.value = "";
      asking = null;
      resolve(dlg.returnValue === "save");
    }, { once: true });
    dlg.showModal();
    input.focus();
  });
  return asking;
}

// call fetches path (GET unless init says otherwise) and returns the
// decoded JSON. A 401 asks for a token once and retries.
export async function call(path, init = {}, retried = false) {
  const headers = new Headers(init.headers || {});
  headers.set("Accept", "application/json");
  const t = token();
  if (t) headers.set("Authorization", "Bearer " + t);
  const resp = await fetch(path, { ...init, headers, cache: "no-store" });
  let body = null;
  const text = await resp.text();
  if (text) {
    try { body = JSON.parse(text); } catch { body = { error: text.trim() }; }
  }
  if (resp.status === 401 && !retried && !declined) {
    const why = t ? "The token was refused; enter another." : "The API needs a bearer token.";
    if (await askToken(why)) return call(path, init, true);
  }
  if (!resp.ok) throw new ApiError(resp.status, body);
  return body;
}

export const get = (path) => call(path);

export const post = (path, value) =>
  call(path, { method: "POST", body: JSON.stringify(value), headers: { "Content-Type": "application/json" } });
