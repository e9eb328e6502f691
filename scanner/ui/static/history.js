// History: the page's address is the query (GET /api/scan/results takes the same parameters), so
// a view is shared by copying the address; the form and the column headers only rewrite it.
"use strict";

Scanner.ready(async () => {
  const { el } = Scanner;
  const form = document.getElementById("filters");
  const body = document.querySelector("#history tbody");
  const PARAMS = ["filename", "hash", "status", "verdict", "detection_min", "detection_max", "date_from", "date_to", "sort_by", "sort_order", "page", "per_page"];
  const LISTS = ["status", "verdict"];
  const here = new URLSearchParams(location.search);

  // The API's query: the page's parameters it knows, lists comma-joined, blanks left out.
  function apiQuery(params) {
    const query = new URLSearchParams();
    for (const name of PARAMS) {
      const values = params.getAll(name).flatMap((v) => v.split(",")).filter((v) => v.trim() !== "");
      if (values.length) query.set(name, LISTS.includes(name) ? values.join(",") : values[0]);
    }
    return query;
  }

  function fillForm(query) {
    for (const name of PARAMS) {
      const value = query.get(name);
      if (value === null) continue;
      if (LISTS.includes(name)) {
        const chosen = value.split(",");
        form.querySelectorAll(`input[name=${name}]`).forEach((box) => (box.checked = chosen.includes(box.value)));
      } else if (form.elements[name]) {
        form.elements[name].value = value;
      }
    }
  }

  function go(query) {
    location.assign(`/history${query.toString() ? "?" + query : ""}`);
  }

  function row(scan) {
    return el(
      "tr",
      {},
      el("th", { scope: "row" }, el("a", { href: `/scans/${scan.id}` }, scan.filename)),
      el("td", {}, Scanner.verdictBadge(scan.verdict)),
      el("td", { class: "num" }, scan.detection_ratio || "—"),
      el("td", {}, scan.status.replace("_", " ")),
      el("td", {}, Scanner.timeTag(scan.scan_date)),
      el("td", {}, Scanner.timeTag(scan.created_at)),
      el("td", {}, el("code", { title: scan.hash_sha256 }, scan.hash_sha256.slice(0, 12) + "…")),
    );
  }

  function pager(query, pagination) {
    const nav = document.getElementById("pager");
    const link = (page, label, rel) => {
      const next = new URLSearchParams(query);
      next.set("page", page);
      return el("a", { class: "button secondary", href: `/history?${next}`, rel }, label);
    };
    const { page, total_pages: pages } = pagination;
    nav.replaceChildren(
      page > 1 ? link(page - 1, "Previous page", "prev") : "",
      el("span", {}, `Page ${page} of ${Math.max(pages, 1)}`),
      page < pages ? link(page + 1, "Next page", "next") : "",
    );
  }

  function markSort(query) {
    const key = query.get("sort_by") || "scan_date";
    const order = query.get("sort_order") || "desc";
    document.querySelectorAll("#history th[data-sort]").forEach((th) => {
      if (th.dataset.sort === key) th.setAttribute("aria-sort", order === "asc" ? "ascending" : "descending");
      th.querySelector("button").addEventListener("click", () => {
        const next = new URLSearchParams(query);
        next.set("sort_order", th.dataset.sort === key && order === "desc" ? "asc" : "desc");
        next.set("sort_by", th.dataset.sort);
        next.delete("page");
        go(next);
      });
    });
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = apiQuery(new FormData(form));
    next.delete("page");
    go(next);
  });

  form.querySelectorAll("[data-export]").forEach((button) =>
    button.addEventListener("click", async () => {
      const query = apiQuery(new FormData(form));
      query.delete("page");
      query.delete("per_page");
      query.set("format", button.dataset.export);
      try {
        await Scanner.download(`/api/scan/results/export?${query}`, `scan-history.${button.dataset.export}`);
      } catch (error) {
        Scanner.notice(Scanner.errorText(error));
      }
    }),
  );

  const query = apiQuery(here);
  fillForm(query);
  markSort(query);
  const page = await Scanner.getJson(`/api/scan/results?${query}`);
  body.replaceChildren(...page.scans.map(row));
  const total = page.pagination.total_items;
  document.getElementById("summary").textContent = total ? `${total} scan${total === 1 ? "" : "s"} match.` : "No scan matches these filters.";
  pager(query, page.pagination);
});
