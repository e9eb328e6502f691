// Files: pick or drop files, upload each with its progress (POST /api/files/upload), then follow
// the scan the upload started until its verdict.
"use strict";

Scanner.ready(async () => {
  const { el } = Scanner;
  const input = document.getElementById("file-input");
  const zone = document.getElementById("dropzone");
  const neverUpload = document.getElementById("never-upload");
  const list = document.getElementById("uploads");
  const empty = document.getElementById("uploads-empty");

  const me = await Scanner.currentUser();
  neverUpload.checked = Boolean(me.never_upload);

  function uploadOne(file) {
    empty.hidden = true;
    const bar = el("progress", { max: "100", value: "0", "aria-label": `Upload of ${file.name}` });
    const state = el("p", { class: "hint" }, "Uploading to this service…");
    const result = el("div", { class: "row" });
    const item = el("li", { dataset: { filename: file.name } }, el("div", { class: "name" }, file.name, " ", el("span", { class: "muted" }, `(${Scanner.bytes(file.size)})`)), bar, state, result);
    list.prepend(item);

    const form = new FormData();
    form.append("never_upload", neverUpload.checked ? "true" : "false");
    form.append("file", file, file.name);
    Scanner.upload("/api/files/upload", form, (share) => {
      bar.value = Math.round(share * 100);
      state.textContent = `Uploading to this service… ${Math.round(share * 100)}%`;
    })
      .then((uploaded) => {
        bar.value = 100;
        bar.hidden = true;
        const scanId = uploaded.scan && uploaded.scan.scan_id;
        if (!scanId) {
          state.textContent = (uploaded.scan && uploaded.scan.message) || "Uploaded; no scan was started.";
          return;
        }
        item.dataset.scanId = scanId;
        state.replaceWith(...followScan(scanId, result));
        result.append(el("a", { href: `/scans/${scanId}` }, "Open the report"));
      })
      .catch((error) => {
        bar.hidden = true;
        state.textContent = `Upload failed: ${Scanner.errorText(error)}`;
        state.className = "notice";
        state.dataset.kind = "error";
      });
  }

  function followScan(scanId, result) {
    const view = ScanLive.progressView(scanId);
    ScanLive.follow(scanId, view.update, (data) => {
      if (data.status === "completed") {
        result.prepend(Scanner.verdictBadge(data.verdict), el("span", { class: "stat" }, data.detection_ratio || ""));
      }
    });
    return view.nodes;
  }

  function uploadAll(files) {
    for (const file of files) uploadOne(file);
  }

  Scanner.dropFiles(zone, input, uploadAll);
});
