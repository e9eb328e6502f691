// A scan's progress as the API's stream tells it (GET /api/stream/scans/{id}), shown as steps
// with the current one in words; shared by the Files and the Scan pages.
"use strict";

const ScanLive = (() => {
  const { el } = Scanner;
  const STEPS = ["queued", "looking_up", "uploading", "waiting_for_analysis", "done"];
  const LABELS = {
    queued: "Queued",
    looking_up: "Looking up",
    waiting_for_quota: "Waiting for quota",
    waiting_for_flight: "Waiting for another scan of this file",
    uploading: "Uploading",
    waiting_for_analysis: "Waiting for analysis",
    done: "Done",
    failed: "Failed",
  };
  const FINISHED = ["completed", "failed", "not_found"];
  const POLL_MS = 3000;

  // The steps as a list plus a line of words; `update(data)` takes a stream event's data.
  function progressView(scanId) {
    const steps = el("ol", { class: "stages", "aria-label": "Scan steps" }, STEPS.map((s) => el("li", { dataset: { step: s } }, LABELS[s])));
    const line = el("p", { class: "stage-text", role: "status" }, "Starting…");
    let countdown = null;

    function stopCountdown() {
      if (countdown) clearInterval(countdown);
      countdown = null;
    }

    // Waiting for quota: the status route says when the next try is due.
    async function showQuotaWait() {
      stopCountdown();
      let status;
      try {
        status = await Scanner.getJson(`/api/scan/${scanId}/status`);
      } catch {
        return;
      }
      if (status.stage !== "waiting_for_quota" || !status.next_check_at) return;
      const due = new Date(status.next_check_at).getTime();
      const tick = () => {
        const left = (due - Date.now()) / 1000;
        line.textContent = left > 0 ? `Waiting for quota: next try in ${Scanner.duration(left)}` : "Waiting for quota: trying again now";
      };
      tick();
      countdown = setInterval(tick, 1000);
    }

    function update(data) {
      const stage = data.stage || (FINISHED.includes(data.status) ? "done" : "queued");
      const failed = data.status === "failed" || data.status === "not_found";
      // Waiting stages sit between the steps they interrupt.
      const shown = { waiting_for_quota: "looking_up", waiting_for_flight: "looking_up", failed: "done" }[stage] || stage;
      const at = STEPS.indexOf(shown);
      steps.querySelectorAll("li").forEach((item, i) => {
        let state = i < at ? "done" : i === at ? "current" : "";
        if (i === at && stage === "done" && !failed) state = "done";
        if (i === at && failed) state = "failed";
        item.dataset.state = state;
        if (state === "current") item.setAttribute("aria-current", "step");
        else item.removeAttribute("aria-current");
      });
      stopCountdown();
      if (failed) line.textContent = data.status === "not_found" ? "VirusTotal does not know this file, and uploading it was not allowed." : `Failed: ${data.error || "unknown reason"}`;
      else if (data.status === "completed") line.textContent = `Done: ${data.verdict || "unknown"}, ${data.detection_ratio || "no ratio"}`;
      else if (stage === "waiting_for_quota") {
        line.textContent = "Waiting for quota";
        showQuotaWait();
      } else line.textContent = LABELS[stage] || stage;
      line.dataset.stage = failed ? "failed" : stage;
      line.dataset.status = data.status;
    }

    return { nodes: [steps, line], update };
  }

  // Follow a scan until it is finished: the stream, or polling when the API refuses another
  // stream (each user may hold a few open at once).
  function follow(scanId, onUpdate, onFinished) {
    let timer = null;
    let done = false;
    const finish = (data) => {
      if (done) return;
      done = true;
      onUpdate(data);
      onFinished(data);
    };
    const poll = async () => {
      try {
        const status = await Scanner.getJson(`/api/scan/${scanId}/status`);
        if (FINISHED.includes(status.status)) return finish(status);
        onUpdate(status);
      } catch (error) {
        Scanner.notice(Scanner.errorText(error));
      }
      if (!done) timer = setTimeout(poll, POLL_MS);
    };
    const live = Scanner.stream(
      `/api/stream/scans/${scanId}`,
      (event, data) => {
        if (event === "status") onUpdate(data);
        else if (event === "complete") finish(data);
      },
      { onRefused: () => poll() },
    );
    return {
      close() {
        done = true;
        live.close();
        if (timer) clearTimeout(timer);
      },
    };
  }

  return { progressView, follow, FINISHED, LABELS };
})();
