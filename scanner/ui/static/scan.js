// One scan: its progress live, then the verdict, the counts by category, the engines' table,
// the file's hashes, and what can be done with it (rescan, export, delete).
"use strict";

Scanner.ready(async () => {
  const { el } = Scanner;
  const scanId = document.getElementById("scan").dataset.scanId;
  const CATEGORIES = ["malicious", "suspicious", "undetected", "harmless", "timeout", "confirmed-timeout", "failure", "type-unsupported"];
  const VERDICT_WORDS = {
    malicious: "Malicious: at least one engine detected it",
    suspicious: "Suspicious: no engine detected it, some found it suspicious",
    clean: "Clean: engines judged it and none flagged it",
    unknown: "Unknown: no engine gave a verdict",
  };

  const view = ScanLive.progressView(scanId);
  document.getElementById("progress").append(...view.nodes);
  const filter = document.getElementById("category-filter");
  const count = document.getElementById("engine-count");
  const engines = SortableTable(document.getElementById("engines"), engineRow, {
    key: "category",
    onDraw: (shown, total) => (count.textContent = `${shown} of ${total} engines`),
  });

  function engineRow(row) {
    return el(
      "tr",
      {},
      el("th", { scope: "row" }, row.engine_name),
      el("td", {}, Scanner.verdictBadge(row.category)),
      el("td", {}, row.result || "—"),
      el("td", {}, row.engine_version || "—"),
      el("td", {}, row.update_date ? row.update_date.slice(0, 10) : "—"),
    );
  }

  function showFacts(report) {
    const facts = document.getElementById("facts");
    const hash = (label, value) => [el("dt", {}, label), el("dd", {}, el("code", {}, value), Scanner.copyButton(value, label))];
    facts.replaceChildren(
      el("dt", {}, "Name"),
      el("dd", {}, report.filename),
      el("dt", {}, "Size"),
      el("dd", {}, Scanner.bytes(report.file_size)),
      el("dt", {}, "Type"),
      el("dd", {}, report.mime_type || "—"),
      ...hash("SHA-256", report.hash_sha256),
      ...hash("SHA-1", report.hash_sha1),
      ...hash("MD5", report.hash_md5),
      el("dt", {}, "VirusTotal"),
      el("dd", {}, report.permalink ? el("a", { href: report.permalink, rel: "noopener noreferrer", target: "_blank" }, "This file on VirusTotal") : "—"),
      el("dt", {}, "Scanned"),
      el("dd", {}, Scanner.timeTag(report.scan_date)),
      el("dt", {}, "Kind"),
      el("dd", {}, report.kind),
    );
  }

  function showVerdict(report) {
    const banner = document.getElementById("banner");
    banner.className = `banner verdict-${report.verdict}`;
    banner.replaceChildren(
      el("span", { class: "verdict-word", id: "verdict-word" }, report.verdict),
      el("span", { class: "ratio", id: "detection-ratio", "aria-label": `Detection ratio ${report.detection_ratio || "none"}` }, report.detection_ratio || "—"),
      el("span", {}, VERDICT_WORDS[report.verdict] || ""),
    );
    const summary = report.summary || {};
    document.getElementById("counts").replaceChildren(
      ...CATEGORIES.map((c) => el("li", { dataset: { category: c } }, el("span", { class: "n" }, summary[c] ?? 0), c)),
    );
    document.getElementById("verdict").hidden = false;
    const present = [...new Set(report.results.map((r) => r.category))];
    filter.replaceChildren(el("option", { value: "" }, "All categories"), ...CATEGORIES.filter((c) => present.includes(c)).map((c) => el("option", { value: c }, `${c} (${summary[c] ?? 0})`)));
    engines.setRows(report.results);
    document.getElementById("engines-section").hidden = report.results.length === 0;
  }

  async function load() {
    const report = await Scanner.getJson(`/api/scan/${scanId}/results`);
    document.getElementById("page-title").textContent = report.filename;
    document.title = `${report.filename} · scanner`;
    showFacts(report);
    view.update(report);
    const finished = ScanLive.FINISHED.includes(report.status);
    document.querySelectorAll("[data-export]").forEach((b) => (b.disabled = report.status !== "completed"));
    document.getElementById("actions").hidden = false;
    if (report.status === "completed") showVerdict(report);
    return { report, finished };
  }

  filter.addEventListener("change", () => engines.filter((row) => !filter.value || row.category === filter.value));

  const { report, finished } = await load();
  if (!finished) ScanLive.follow(scanId, view.update, () => load());

  document.getElementById("rescan").addEventListener("click", async (event) => {
    event.currentTarget.disabled = true;
    try {
      const { body } = await Scanner.api(`/api/scan/file/${report.file_id}/rescan`, { method: "POST", json: {} });
      location.assign(`/scans/${body.scan_id}`);
    } catch (error) {
      Scanner.notice(Scanner.errorText(error));
      event.target.disabled = false;
    }
  });

  document.querySelectorAll("[data-export]").forEach((button) =>
    button.addEventListener("click", async () => {
      const format = button.dataset.export;
      try {
        await Scanner.download(`/api/scan/${scanId}/export?format=${format}`, `scan-${scanId}.${format}`);
        Scanner.notice(`Exported ${format.toUpperCase()}.`, "ok");
      } catch (error) {
        Scanner.notice(Scanner.errorText(error));
      }
    }),
  );

  document.getElementById("delete").addEventListener("click", async () => {
    if (!confirm(`Delete ${report.filename} and all its scans? This cannot be undone.`)) return;
    try {
      await Scanner.api(`/api/files/${report.file_id}`, { method: "DELETE" });
      location.assign("/history");
    } catch (error) {
      Scanner.notice(Scanner.errorText(error));
    }
  });
});
