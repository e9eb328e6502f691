// A table sorted by clicking its column headers (aria-sort tells screen readers the order) and
// filtered by a callback; rows are plain objects, cells are made by `render(row)`.
"use strict";

const SortableTable = (table, render, options = {}) => {
  const body = table.querySelector("tbody");
  let rows = [];
  let key = options.key || null;
  let direction = options.direction || "ascending";
  let keep = () => true;

  function compare(a, b) {
    const x = a[key] ?? "";
    const y = b[key] ?? "";
    const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true });
    return direction === "ascending" ? order : -order;
  }

  function draw() {
    const shown = rows.filter(keep);
    if (key) shown.sort(compare);
    body.replaceChildren(...shown.map(render));
    table.querySelectorAll("th[data-key]").forEach((th) => {
      if (th.dataset.key === key) th.setAttribute("aria-sort", direction);
      else th.removeAttribute("aria-sort");
    });
    if (options.onDraw) options.onDraw(shown.length, rows.length);
  }

  table.querySelectorAll("th[data-key] button.sort").forEach((button) => {
    button.addEventListener("click", () => {
      const th = button.closest("th");
      direction = key === th.dataset.key && direction === "ascending" ? "descending" : "ascending";
      key = th.dataset.key;
      draw();
    });
  });

  return {
    setRows(next) {
      rows = next;
      draw();
    },
    filter(predicate) {
      keep = predicate;
      draw();
    },
  };
};
