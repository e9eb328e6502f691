// Admin: the service's health (GET /api/providers/health, open to all), then for admins the
// answering process's performance, request metrics, the users and the audit trail.
"use strict";

Scanner.ready(async () => {
  const { el } = Scanner;
  const PER_PAGE = 20;

  function pager(nav, pagination, show) {
    const { page, total_pages: pages } = pagination;
    nav.replaceChildren(
      page > 1 ? el("button", { type: "button", class: "secondary", onclick: () => show(page - 1) }, "Previous page") : "",
      el("span", {}, `Page ${page} of ${Math.max(pages, 1)} (${pagination.total_items})`),
      page < pages ? el("button", { type: "button", class: "secondary", onclick: () => show(page + 1) }, "Next page") : "",
    );
  }

  const STATUS_CLASSES = { ok: "verdict-clean", healthy: "verdict-clean", degraded: "verdict-suspicious", unconfigured: "verdict-suspicious", not_configured: "verdict-unknown" };
  function statusClass(status) {
    return STATUS_CLASSES[status] || "verdict-malicious";
  }

  async function health() {
    const { body } = await Scanner.api("/api/providers/health", { anonymous: true });
    const parts = { overall: { status: body.status, message: `as of ${Scanner.when(body.timestamp)}` }, database: body.components.database, redis: body.components.redis, virustotal: body.components.providers.virustotal };
    document.getElementById("health").replaceChildren(
      ...Object.entries(parts).map(([name, part]) => el("li", { dataset: { component: name } }, el("span", { class: "label" }, name), " ", el("span", { class: `badge ${statusClass(part.status)}` }, part.status), el("p", { class: "hint" }, part.message))),
    );
  }

  async function performance() {
    const body = await Scanner.getJson("/api/providers/performance");
    const { system, process } = body.system_metrics;
    const flag = (exceeded) => (exceeded ? " (over the threshold)" : "");
    document.getElementById("performance").replaceChildren(
      el("dt", {}, "Status"),
      el("dd", {}, el("span", { class: `badge ${statusClass(body.performance_health.status)}` }, body.performance_health.status)),
      el("dt", {}, "Machine memory"),
      el("dd", {}, `${system.memory.percent}%${flag(system.memory.threshold_exceeded)}`),
      el("dt", {}, "Machine CPU"),
      el("dd", {}, `${system.cpu.percent}%${flag(system.cpu.threshold_exceeded)}`),
      el("dt", {}, "Process memory"),
      el("dd", {}, `${Scanner.bytes(process.memory.rss)}${flag(process.memory.threshold_exceeded)}`),
      el("dt", {}, "Process CPU"),
      el("dd", {}, `${process.cpu}%`),
      el("dt", {}, "Issues"),
      el("dd", {}, body.performance_health.issues.join("; ") || "none"),
      el("dt", {}, "Advice"),
      el("dd", {}, body.performance_health.recommendations.join("; ") || "none"),
    );
  }

  async function metrics() {
    const hours = document.getElementById("metrics-hours").value;
    const body = await Scanner.getJson(`/api/providers/metrics?hours=${hours}`);
    document.getElementById("metrics").replaceChildren(
      el("dt", {}, "Requests"),
      el("dd", {}, body.total_requests),
      el("dt", {}, "Error rate"),
      el("dd", {}, `${body.error_rate}%`),
      el("dt", {}, "By status"),
      el("dd", {}, Object.entries(body.requests_by_status).map(([status, n]) => `${status}: ${n}`).join(", ") || "—"),
    );
    const busiest = Object.entries(body.requests_by_endpoint).sort((a, b) => b[1] - a[1]).slice(0, 10);
    document.querySelector("#routes tbody").replaceChildren(...busiest.map(([route, n]) => el("tr", {}, el("td", {}, el("code", {}, route)), el("td", { class: "num" }, n))));
  }

  async function users(page = 1) {
    const body = await Scanner.getJson(`/api/auth/users?page=${page}&per_page=${PER_PAGE}`);
    document.querySelector("#users tbody").replaceChildren(
      ...body.users.map((u) => el("tr", {}, el("th", { scope: "row" }, u.username), el("td", {}, u.email), el("td", {}, u.role), el("td", {}, u.never_upload ? "yes" : "no"), el("td", {}, Scanner.timeTag(u.created_at)))),
    );
    pager(document.getElementById("users-pager"), body.pagination, users);
  }

  const auditForm = document.getElementById("audit-filters");
  async function audit(page = 1) {
    const query = new URLSearchParams({ page, per_page: PER_PAGE });
    for (const name of ["action", "outcome"]) if (auditForm[name].value) query.set(name, auditForm[name].value);
    const body = await Scanner.getJson(`/api/admin/audit?${query}`);
    document.querySelector("#audit tbody").replaceChildren(
      ...body.events.map((e) =>
        el(
          "tr",
          {},
          el("td", {}, Scanner.timeTag(e.created_at)),
          el("td", {}, e.actor_name || "—"),
          el("td", {}, el("code", {}, e.action)),
          el("td", {}, el("span", { class: `badge ${e.outcome === "success" ? "verdict-clean" : "verdict-malicious"}` }, e.outcome)),
          el("td", {}, e.target_type ? `${e.target_type} ${e.target_id ? e.target_id.slice(0, 8) : ""}` : "—"),
          el("td", {}, e.address || "—"),
          el("td", {}, Object.entries(e.details || {}).map(([k, v]) => `${k}=${v}`).join(", ") || "—"),
        ),
      ),
    );
    pager(document.getElementById("audit-pager"), body.pagination, audit);
  }

  const me = await Scanner.currentUser();
  await health();
  if (me.role !== "admin") {
    document.getElementById("not-admin").hidden = false;
    return;
  }
  document.getElementById("metrics-hours").addEventListener("change", metrics);
  auditForm.addEventListener("submit", (event) => {
    event.preventDefault();
    audit(1);
  });
  await Promise.all([performance(), metrics(), users(), audit()]);
});
