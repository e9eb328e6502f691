// Keys: the user's VirusTotal keys with their budgets (GET /api/keys/), added, checked, renamed,
// turned off and on, and deleted through the same routes.
"use strict";

Scanner.ready(async () => {
  const { el } = Scanner;
  const list = document.getElementById("keys");
  const form = document.getElementById("add-key");

  function budget(label, used, limit, resetsAt) {
    return [
      el("dt", {}, label),
      el("dd", {}, el("span", { class: "stat" }, `${used} of ${limit} used`), el("progress", { max: String(limit), value: String(Math.min(used, limit)), "aria-label": `${label}: ${used} of ${limit} used` }), resetsAt ? el("span", { class: "hint" }, "resets ", Scanner.timeTag(resetsAt)) : ""),
    ];
  }

  function keyItem(key) {
    const usage = key.usage;
    const state = [
      el("span", { class: `badge ${key.is_active ? "verdict-clean" : "verdict-unknown"}` }, key.is_active ? "active" : "inactive"),
      el("span", { class: `badge ${key.is_verified ? "verdict-clean" : "verdict-suspicious"}` }, key.is_verified ? "verified" : "not verified"),
    ];
    const facts = el(
      "dl",
      { class: "facts" },
      el("dt", {}, "Key"),
      el("dd", {}, el("code", {}, `…${key.last4}`)),
      ...(usage ? budget("This minute", usage.minute_used, key.per_minute, usage.minute_resets_at) : []),
      ...(usage ? budget("Today (UTC)", usage.day_used, key.per_day, usage.day_resets_at) : [el("dt", {}, "Budget"), el("dd", {}, "unknown while the quota store is unreachable")]),
      el("dt", {}, "Last used"),
      el("dd", {}, Scanner.timeTag(key.last_used_at)),
      key.exhausted_until ? [el("dt", {}, "Paused until"), el("dd", {}, Scanner.timeTag(key.exhausted_until))] : [],
      key.last_error ? [el("dt", {}, "Last error"), el("dd", {}, key.last_error)] : [],
    );
    const item = el("li", { dataset: { keyId: key.id, name: key.name } }, el("div", { class: "row" }, el("span", { class: "name" }, key.name), ...state), facts);
    const actions = el(
      "div",
      { class: "actions" },
      el("button", { type: "button", class: "secondary", onclick: () => rename(item, key) }, "Rename"),
      el("button", { type: "button", class: "secondary", onclick: () => change(key, { is_active: !key.is_active }) }, key.is_active ? "Deactivate" : "Activate"),
      el("button", { type: "button", class: "danger", onclick: () => remove(key) }, "Delete"),
    );
    item.append(actions);
    return item;
  }

  function rename(item, key) {
    const input = el("input", { id: `rename-${key.id}`, value: key.name, maxlength: "100", required: true });
    const editor = el(
      "form",
      { class: "row", onsubmit: (event) => (event.preventDefault(), change(key, { name: input.value.trim() })) },
      el("label", { for: input.id, class: "label" }, "New name"),
      input,
      el("button", { type: "submit" }, "Save"),
      el("button", { type: "button", class: "secondary", onclick: () => editor.remove() }, "Cancel"),
    );
    item.append(editor);
    input.focus();
    input.select();
  }

  async function change(key, changes) {
    try {
      const { body } = await Scanner.api(`/api/keys/${key.id}`, { method: "PUT", json: changes });
      Scanner.notice(`${body.api_key.name}: saved.`, "ok");
      await load();
    } catch (error) {
      Scanner.notice(Scanner.errorText(error));
    }
  }

  async function remove(key) {
    if (!confirm(`Delete the key "${key.name}"? Scans waiting for it will use another key or wait.`)) return;
    try {
      await Scanner.api(`/api/keys/${key.id}`, { method: "DELETE" });
      Scanner.notice(`${key.name}: deleted.`, "ok");
      await load();
    } catch (error) {
      Scanner.notice(Scanner.errorText(error));
    }
  }

  async function load() {
    const { api_keys: keys } = await Scanner.getJson("/api/keys/");
    list.replaceChildren(...keys.map(keyItem));
    document.getElementById("keys-empty").hidden = keys.length > 0;
  }

  function formBody() {
    const body = { name: form.name.value.trim(), key_value: form.key_value.value.trim() };
    for (const name of ["per_minute", "per_day"]) if (form[name].value) body[name] = Number(form[name].value);
    return body;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const { body } = await Scanner.api("/api/keys/", { method: "POST", json: formBody() });
      form.reset();
      Scanner.notice(`${body.api_key.name}: added and accepted by VirusTotal.`, "ok");
      await load();
    } catch (error) {
      Scanner.notice(Scanner.errorText(error));
    } finally {
      button.disabled = false;
    }
  });

  document.getElementById("validate-key").addEventListener("click", async () => {
    try {
      const { body } = await Scanner.api("/api/keys/validate", { method: "POST", json: { key_value: form.key_value.value.trim() } });
      Scanner.notice(body.message, body.valid ? "ok" : "error");
    } catch (error) {
      Scanner.notice(Scanner.errorText(error));
    }
  });

  const neverUpload = document.getElementById("default-never-upload");
  neverUpload.checked = Boolean((await Scanner.currentUser()).never_upload);
  neverUpload.addEventListener("change", async () => {
    try {
      await Scanner.api("/api/auth/profile", { method: "PUT", json: { never_upload: neverUpload.checked } });
      Scanner.notice(neverUpload.checked ? "New uploads will never be sent to VirusTotal by default." : "New uploads may be sent to VirusTotal when it does not know them.", "ok");
    } catch (error) {
      Scanner.notice(Scanner.errorText(error));
    }
  });

  await load();
});
