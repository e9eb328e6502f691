// Indicators: one pasted line is checked and followed live (GET /api/stream_ioc); several lines or
// a dropped file become a bulk job (POST /api/bulk), followed live (/api/stream/bulk/{id}). The
// page's address names the job shown (?job=...), so it can be reopened and shared.
"use strict";

Scanner.ready(async () => {
  const { el } = Scanner;
  const form = document.getElementById("check-form");
  const RESULTS_PER_PAGE = 500;
  let jobStream = null;

  function age(seconds) {
    return seconds === null || seconds === undefined ? "—" : `${Scanner.duration(seconds)} old`;
  }

  function sourceText(source) {
    return { cache: "cache", database: "stored report", virustotal: "VirusTotal" }[source] || "—";
  }

  // -- one indicator ----------------------------------------------------------------------------
  function showAnswer(answer) {
    const provider = (answer.providers || [])[0] || {};
    const summary = answer.summary || {};
    const card = document.getElementById("single-card");
    card.replaceChildren(
      el("div", { class: "row" }, el("code", { class: "name" }, answer.ioc), el("span", { class: "badge verdict-unknown" }, answer.ioc_type), Scanner.verdictBadge(summary.verdict)),
      el(
        "dl",
        { class: "facts" },
        el("dt", {}, "Status"),
        el("dd", { id: "single-status" }, answer.status),
        el("dt", {}, "Score"),
        el("dd", {}, summary.score ?? "—"),
        el("dt", {}, "Why"),
        el("dd", {}, summary.explanation || "—"),
        el("dt", {}, "Engines"),
        el("dd", {}, provider.malicious_count === null || provider.malicious_count === undefined ? "—" : `${provider.malicious_count} malicious, ${provider.suspicious_count} suspicious, ${provider.harmless_count} harmless, ${provider.undetected_count} undetected`),
        el("dt", {}, "Source"),
        el("dd", {}, sourceText(answer.source)),
        el("dt", {}, "Age"),
        el("dd", {}, age(answer.report_age_seconds)),
        el("dt", {}, "VirusTotal"),
        el("dd", {}, provider.permalink ? el("a", { href: provider.permalink, rel: "noopener noreferrer", target: "_blank" }, "This indicator on VirusTotal") : "—"),
        answer.error ? [el("dt", {}, "Error"), el("dd", {}, answer.error)] : [],
      ),
    );
    document.getElementById("single").hidden = false;
  }

  function checkOne(ioc) {
    document.getElementById("job").hidden = true;
    const query = new URLSearchParams({ ioc, force_refresh: document.getElementById("force-refresh").checked });
    const live = Scanner.stream(
      `/api/stream_ioc?${query}`,
      (event, data) => {
        if (event === "status" || event === "complete") showAnswer(data);
        if (event === "complete") {
          live.close();
          loadLookups();
        }
      },
      { onRefused: (error) => Scanner.notice(Scanner.errorText(error)) },
    );
  }

  // -- bulk jobs ----------------------------------------------------------------------------------
  function resultRow(item) {
    const detections = item.malicious_count === null ? "—" : `${item.malicious_count}`;
    return el(
      "tr",
      {},
      el("td", { class: "num" }, item.line),
      el("th", { scope: "row" }, el("code", {}, item.ioc)),
      el("td", {}, item.ioc_type),
      el("td", {}, item.status, item.error ? el("span", { class: "hint" }, `: ${item.error}`) : ""),
      el("td", {}, Scanner.verdictBadge(item.verdict)),
      el("td", { class: "num" }, item.score ?? "—"),
      el("td", { class: "num" }, detections),
      el("td", {}, sourceText(item.source)),
      el("td", {}, age(item.report_age_seconds)),
    );
  }

  function showCounts(job) {
    const done = job.processed_iocs + job.cancelled_iocs;
    const bar = document.getElementById("job-progress");
    bar.max = Math.max(job.total_iocs, 1);
    bar.value = done;
    document.getElementById("job-status").textContent = `${job.status}: ${job.processed_iocs} of ${job.total_iocs} answered (${job.completed_iocs} completed, ${job.failed_iocs} failed, ${job.pending_iocs} pending${job.cancelled_iocs ? `, ${job.cancelled_iocs} cancelled` : ""})`;
    document.getElementById("job-status").dataset.status = job.status;
    document.getElementById("job-cancel").hidden = !["pending", "running"].includes(job.status);
  }

  async function loadJob(jobId) {
    const job = await Scanner.getJson(`/api/bulk/${jobId}?per_page=${RESULTS_PER_PAGE}`);
    showCounts(job);
    const notes = [];
    if (job.filename) notes.push(`From ${job.filename}.`);
    if (job.duplicate_count) notes.push(`${job.duplicate_count} repeated line(s) left out.`);
    if (job.invalid_count) notes.push(`${job.invalid_count} line(s) are not indicators: ` + job.invalid_lines.slice(0, 5).map((l) => `line ${l.line} (${l.reason})`).join(", ") + ".");
    if (job.error) notes.push(job.error);
    document.getElementById("job-notes").textContent = notes.join(" ");
    document.querySelector("#job-results tbody").replaceChildren(...job.results.map(resultRow));
    return job;
  }

  function followJob(jobId) {
    if (jobStream) jobStream.close();
    document.getElementById("single").hidden = true;
    document.getElementById("job").hidden = false;
    document.getElementById("job").dataset.jobId = jobId;
    let reloading = null;
    const reload = () => {
      // Results are read at most once a second however fast the counts move.
      if (!reloading) reloading = new Promise((r) => setTimeout(r, 1000)).then(() => loadJob(jobId)).finally(() => (reloading = null));
    };
    loadJob(jobId).catch((error) => Scanner.notice(Scanner.errorText(error)));
    jobStream = Scanner.stream(
      `/api/stream/bulk/${jobId}`,
      (event, data) => {
        if (event === "progress") {
          showCounts(data);
          reload();
        } else if (event === "complete") {
          showCounts(data);
          loadJob(jobId).then(loadJobs);
        }
      },
      { onRefused: (error) => Scanner.notice(Scanner.errorText(error)) },
    );
  }

  async function submitList(blob, filename) {
    const body = new FormData();
    body.append("file", blob, filename);
    try {
      const { body: job } = await Scanner.api("/api/bulk", { method: "POST", body });
      history.replaceState(null, "", `/indicators?job=${job.job_id}`);
      Scanner.notice(`Bulk job started: ${job.total_iocs} indicator(s).`, "info");
      followJob(job.job_id);
      loadJobs();
    } catch (error) {
      Scanner.notice(Scanner.errorText(error));
    }
  }

  document.querySelectorAll("[data-job-export]").forEach((button) =>
    button.addEventListener("click", async () => {
      const jobId = document.getElementById("job").dataset.jobId;
      const format = button.dataset.jobExport;
      try {
        await Scanner.download(`/api/bulk/${jobId}/export?format=${format}`, `bulk-${jobId}.${format}`);
      } catch (error) {
        Scanner.notice(Scanner.errorText(error));
      }
    }),
  );

  document.getElementById("job-cancel").addEventListener("click", async () => {
    const jobId = document.getElementById("job").dataset.jobId;
    try {
      showCounts((await Scanner.api(`/api/bulk/${jobId}`, { method: "DELETE" })).body);
    } catch (error) {
      Scanner.notice(Scanner.errorText(error));
    }
  });

  // -- the form and the drop zone -------------------------------------------------------------------
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    Scanner.notice("");
    const lines = form.iocs.value.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
    if (!lines.length) return Scanner.notice("Paste at least one indicator.");
    if (lines.length === 1) checkOne(lines[0]);
    else submitList(new Blob([lines.join("\n") + "\n"], { type: "text/plain" }), "pasted.txt");
  });

  const zone = document.getElementById("bulk-drop");
  const fileInput = document.getElementById("bulk-file");
  Scanner.dropFiles(zone, fileInput, (files) => {
    if (files[0]) submitList(files[0], files[0].name);
  });

  // -- what was asked before ---------------------------------------------------------------------------
  async function loadLookups() {
    const { lookups } = await Scanner.getJson("/api/lookups?per_page=10");
    document.querySelector("#lookups tbody").replaceChildren(
      ...lookups.map((l) => el("tr", {}, el("th", { scope: "row" }, el("code", {}, l.ioc)), el("td", {}, l.ioc_type), el("td", {}, Scanner.verdictBadge(l.verdict)), el("td", {}, sourceText(l.source)), el("td", {}, Scanner.timeTag(l.created_at)))),
    );
  }

  async function loadJobs() {
    const { jobs } = await Scanner.getJson("/api/bulk?per_page=5");
    document.querySelector("#jobs tbody").replaceChildren(
      ...jobs.map((j) => el("tr", {}, el("th", { scope: "row" }, el("a", { href: `/indicators?job=${j.id}` }, j.filename || `${j.total_iocs} indicators`)), el("td", {}, j.status), el("td", { class: "num" }, `${j.processed_iocs}/${j.total_iocs}`), el("td", {}, Scanner.timeTag(j.created_at)))),
    );
  }

  const shown = new URLSearchParams(location.search).get("job");
  if (shown) followJob(shown);
  await Promise.all([loadLookups(), loadJobs()]);
});
