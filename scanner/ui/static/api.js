// The one client every page uses: the public JSON API with the signed-in user's bearer token, the
// live streams, uploads with progress, downloads, and a few DOM helpers. No framework: each page's
// script is a few functions over these.
"use strict";

const Scanner = (() => {
  const SESSION_KEY = "scanner.session";

  // -- the session: the API's access and refresh tokens, kept until sign-out ------------------
  // localStorage, not a cookie: the API reads the bearer header only, and a shared link opened in
  // a new tab must find the user signed in. The strict CSP (no inline or foreign script) is what
  // keeps other scripts away from it.
  const session = {
    get() {
      try {
        return JSON.parse(localStorage.getItem(SESSION_KEY)) || null;
      } catch {
        return null;
      }
    },
    set(value) {
      localStorage.setItem(SESSION_KEY, JSON.stringify(value));
    },
    clear() {
      localStorage.removeItem(SESSION_KEY);
    },
  };

  class ApiError extends Error {
    constructor(status, body) {
      const error = (body && body.error) || {};
      super(error.message || `The server answered ${status}`);
      this.status = status;
      this.code = error.code || "";
      this.details = error.details || {};
    }
  }

  function signInUrl() {
    const here = location.pathname + location.search;
    return "/signin?next=" + encodeURIComponent(here);
  }

  function signedOut() {
    session.clear();
    location.assign(signInUrl());
    return new Promise(() => {}); // the page is going away
  }

  // One refresh at a time: the API retires a refresh token when it is used, and treats a second
  // use as theft (the whole session is then revoked).
  let refreshing = null;
  function refresh() {
    if (!refreshing) {
      const current = session.get();
      refreshing = fetch("/api/auth/refresh", {
        method: "POST",
        headers: { Authorization: "Bearer " + (current && current.refresh_token) },
      })
        .then(async (response) => {
          if (!response.ok) return false;
          const tokens = await response.json();
          session.set({ ...session.get(), ...tokens });
          return true;
        })
        .catch(() => false)
        .finally(() => {
          refreshing = null;
        });
    }
    return refreshing;
  }

  function authHeaders(extra) {
    const current = session.get();
    const headers = { ...(extra || {}) };
    if (current) headers.Authorization = "Bearer " + current.access_token;
    return headers;
  }

  async function readBody(response) {
    const type = response.headers.get("Content-Type") || "";
    if (type.includes("application/json")) return response.json();
    return null;
  }

  // fetch() with the token; an expired token is refreshed once, a refused session signs out.
  async function request(path, options = {}, retried = false) {
    const init = { method: options.method || "GET", headers: authHeaders(options.headers) };
    if (options.json !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.json);
    } else if (options.body !== undefined) {
      init.body = options.body;
    }
    const response = await fetch(path, init);
    if (response.status === 401 && !options.anonymous) {
      const body = await readBody(response);
      const code = body && body.error && body.error.code;
      if (code === "TOKEN_EXPIRED" && !retried && (await refresh())) return request(path, options, true);
      return signedOut();
    }
    return response;
  }

  async function api(path, options = {}) {
    const response = await request(path, options);
    const body = await readBody(response);
    if (!response.ok) throw new ApiError(response.status, body);
    return { body, status: response.status, headers: response.headers };
  }

  async function getJson(path) {
    return (await api(path)).body;
  }

  // -- Server-Sent Events over fetch(): EventSource cannot send the Authorization header ----------
  function stream(path, onEvent, options = {}) {
    const controller = new AbortController();
    let closed = false;
    const retryMs = options.retryMs || 3000;

    function dispatch(block) {
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trim());
      }
      if (!data.length) return null;
      let parsed;
      try {
        parsed = JSON.parse(data.join("\n"));
      } catch {
        parsed = data.join("\n");
      }
      onEvent(event, parsed);
      return event;
    }

    async function connect(retried) {
      let response;
      try {
        response = await request(path, { headers: { Accept: "text/event-stream" } });
      } catch (error) {
        if (!closed) setTimeout(() => connect(false), retryMs);
        return;
      }
      if (!response.ok) {
        const body = await readBody(response);
        if (options.onRefused) options.onRefused(new ApiError(response.status, body));
        return;
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      let last = null;
      controller.signal.addEventListener("abort", () => reader.cancel());
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const event = dispatch(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
            if (event) last = event;
          }
        }
      } catch {
        // the connection dropped: reconnect below
      }
      if (closed || last === "complete") return;
      // `timeout`: the stream's time was up; `unauthorized`: the token expired while it was open.
      if (last === "unauthorized" && !retried && !(await refresh())) return signedOut();
      setTimeout(() => connect(last === "unauthorized"), last === "timeout" ? 0 : retryMs);
    }

    connect(false);
    return {
      close() {
        closed = true;
        controller.abort();
      },
    };
  }

  // -- uploads with progress: fetch() cannot report how much of a request body was sent ----------
  function upload(path, form, onProgress, retried = false) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", path);
      const headers = authHeaders();
      if (headers.Authorization) xhr.setRequestHeader("Authorization", headers.Authorization);
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable && onProgress) onProgress(event.loaded / event.total);
      });
      xhr.addEventListener("load", () => {
        let body = null;
        try {
          body = JSON.parse(xhr.responseText);
        } catch {
          body = null;
        }
        const code = body && body.error && body.error.code;
        if (xhr.status === 401 && code === "TOKEN_EXPIRED" && !retried) {
          refresh().then((ok) => (ok ? upload(path, form, onProgress, true).then(resolve, reject) : signedOut()));
        } else if (xhr.status === 401) {
          signedOut();
        } else if (xhr.status >= 200 && xhr.status < 300) {
          resolve(body);
        } else {
          reject(new ApiError(xhr.status, body));
        }
      });
      xhr.addEventListener("error", () => reject(new ApiError(0, null)));
      xhr.send(form);
    });
  }

  // -- downloads: the export routes need the token, so the file is fetched and handed over -------
  function filenameOf(response, fallback) {
    const disposition = response.headers.get("Content-Disposition") || "";
    const utf8 = /filename\*=UTF-8''([^;]+)/i.exec(disposition);
    if (utf8) return decodeURIComponent(utf8[1]);
    const plain = /filename="?([^";]+)"?/i.exec(disposition);
    return plain ? plain[1] : fallback;
  }

  async function download(path, fallbackName) {
    const response = await request(path);
    if (!response.ok) throw new ApiError(response.status, await readBody(response));
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const link = el("a", { href: url, download: filenameOf(response, fallbackName) });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  // -- DOM helpers ------------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "dataset") Object.assign(node.dataset, value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function notice(message, kind = "error") {
    const box = document.getElementById("notice");
    box.textContent = message;
    box.dataset.kind = kind;
    box.hidden = !message;
  }

  function errorText(error) {
    if (error instanceof ApiError) {
      if (error.status === 0) return "The service cannot be reached; check your connection and try again.";
      // The envelope's message already names each refused field.
      const retry = error.details && error.details.retry_after;
      let text = error.message;
      if (retry) text += ` Try again in ${duration(retry)}.`;
      return text;
    }
    return String((error && error.message) || error);
  }

  function duration(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 60) return `${seconds} s`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
    if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
    return `${Math.floor(seconds / 86400)} d ${Math.floor((seconds % 86400) / 3600)} h`;
  }

  function when(iso) {
    if (!iso) return "—";
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
  }

  function timeTag(iso) {
    return iso ? el("time", { datetime: iso }, when(iso)) : "—";
  }

  function bytes(n) {
    if (n === null || n === undefined) return "—";
    const units = ["B", "KB", "MB", "GB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i += 1;
    }
    return `${i ? n.toFixed(1) : n} ${units[i]}`;
  }

  function verdictBadge(verdict) {
    return el("span", { class: `badge verdict-${verdict || "unknown"}` }, verdict || "unknown");
  }

  async function copy(text, button) {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const area = el("textarea", { class: "offscreen", readonly: true }, text);
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => (button.textContent = label), 1500);
  }

  function copyButton(text, what) {
    return el("button", { type: "button", class: "small secondary", "aria-label": `Copy ${what}`, onclick: (e) => copy(text, e.currentTarget) }, "Copy");
  }

  // -- the page frame: signed-in pages need a session; the header shows who and what ---------------
  let me = null;
  function currentUser() {
    if (!me) me = getJson("/api/auth/me");
    return me;
  }

  async function signOut() {
    try {
      await request("/api/auth/logout", { method: "POST", anonymous: true });
    } finally {
      session.clear();
      location.assign("/signin");
    }
  }

  function ready(init) {
    const start = async () => {
      const isPublic = document.body.dataset.public === "true";
      if (!isPublic) {
        if (!session.get()) return signedOut();
        document.getElementById("signout").addEventListener("click", signOut);
        try {
          const user = await currentUser();
          document.getElementById("whoami").textContent = `Signed in as ${user.username}`;
          if (user.role === "admin") document.querySelectorAll("[data-admin-only]").forEach((n) => (n.hidden = false));
        } catch (error) {
          notice(errorText(error));
        }
      }
      try {
        await init();
      } catch (error) {
        notice(errorText(error));
      } finally {
        // Controls that act through the script stay off until it has set them up: a form sent
        // before that would reload the page, and an upload could miss the user's "never upload".
        document.querySelectorAll("[data-wait]").forEach((node) => (node.disabled = false));
        document.body.dataset.ready = "true";
      }
    };
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
    else start();
  }

  // A drop zone and its file input: `onFiles(fileList)` gets what was picked or dropped.
  function dropFiles(zone, input, onFiles) {
    input.addEventListener("change", () => {
      onFiles(input.files);
      input.value = "";
    });
    zone.addEventListener("dragover", (event) => {
      event.preventDefault();
      zone.classList.add("over");
    });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("over");
      onFiles(event.dataTransfer.files);
    });
  }

  return {
    ApiError,
    api,
    getJson,
    stream,
    upload,
    download,
    session,
    currentUser,
    el,
    notice,
    errorText,
    duration,
    when,
    timeTag,
    bytes,
    verdictBadge,
    copyButton,
    dropFiles,
    ready,
  };
})();
