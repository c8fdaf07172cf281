// The JSON API client: every call carries `Authorization: tma <initData>` inside Telegram. On a
// desktop browser signed in on /billing the session cookie goes along instead, and every call that
// changes something echoes the readable CSRF cookie in `X-CSRF-Token`. The public view sends
// neither and gets the free tier's answers.
import { initData } from "./telegram.js";

export class ApiError extends Error {
  constructor(status, error, detail) {
    super(`${status} ${error}`);
    this.status = status;
    this.error = error;
    this.detail = detail;
  }
}

const CSRF_COOKIE = "volspike_csrf";

function csrfToken() {
  const found = document.cookie.split("; ").find((part) => part.startsWith(`${CSRF_COOKIE}=`));
  return found ? decodeURIComponent(found.slice(CSRF_COOKIE.length + 1)) : "";
}

/** Signed in on the web (/billing): the session cookie is sent with every same-origin call. */
export const webSession = !initData && csrfToken() !== "";

function headers(method, extra) {
  const all = { Accept: "application/json", ...extra };
  if (initData) all.Authorization = `tma ${initData}`;
  else if (webSession && method !== "GET") all["X-CSRF-Token"] = csrfToken();
  return all;
}

export async function api(path, { method = "GET", body } = {}) {
  const init = { method, headers: headers(method, body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    throw new ApiError(response.status, (data && data.error) || "http_error", data && data.detail);
  }
  return data;
}

let inline = null;

/** The page's inline answer to `path` (`<script type="application/json" id="first-candles">`,
 * keyed by URL), once, or undefined: later calls of the same URL ask the server. */
export function takeInline(path) {
  if (inline === null) {
    const node = document.getElementById("first-candles");
    inline = node ? JSON.parse(node.textContent) : {};
  }
  const found = inline[path];
  delete inline[path];
  return found;
}

/** The signed-in user (`GET /api/me`: initData or the web session), or null in the public view
 * or when the API refuses. */
export async function me() {
  if (!initData && !webSession) return null;
  try {
    return await api("/api/me");
  } catch (error) {
    if (error instanceof ApiError) return null;
    throw error;
  }
}
