// The run table of nbtrack.compare(): one page of rows, sortable headers, row selection.
// Python sends formatted cells for the current page only; clicks set sort_by/ascending,
// page and selected, and Python answers with the next page.

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function render({ model, el: root }) {
  root.classList.add("nbtrack-table");

  function toggle(number) {
    const selected = [...model.get("selected")];
    const at = selected.indexOf(number);
    if (at >= 0) selected.splice(at, 1);
    else selected.push(number);
    model.set("selected", selected);
    model.save_changes();
  }

  function sortBy(key) {
    if (model.get("sort_by") === key) model.set("ascending", !model.get("ascending"));
    else {
      model.set("sort_by", key);
      model.set("ascending", true);
    }
    model.set("page", 0);
    model.save_changes();
  }

  function draw() {
    const columns = model.get("columns");
    const rows = model.get("rows");
    const selected = new Set(model.get("selected"));
    const sortKey = model.get("sort_by");
    const ascending = model.get("ascending");
    const bestRun = model.get("best_run");

    const wrap = el("div", { class: "nbtrack-table-scroll" });
    const table = el("table", { class: "nbtrack-runs" });
    const thead = el("thead");
    const groups = el("tr", { class: "groups" });
    const header = el("tr");
    groups.appendChild(el("th"));
    const all = el("input", { type: "checkbox", title: "select every run on this page" });
    all.checked = rows.length > 0 && rows.every((r) => selected.has(r.number));
    all.addEventListener("change", () => {
      const current = [...model.get("selected")];
      const page = rows.map((r) => r.number);
      const next = all.checked
        ? current.concat(page.filter((n) => !current.includes(n)))
        : current.filter((n) => !page.includes(n));
      model.set("selected", next);
      model.save_changes();
    });
    const allCell = el("th");
    allCell.appendChild(all);
    header.appendChild(allCell);
    let lastGroup = null;
    for (const column of columns) {
      const group = el("th", {}, column.group !== lastGroup ? column.group : "");
      lastGroup = column.group;
      groups.appendChild(group);
      const arrow = column.key === sortKey ? (ascending ? " ▲" : " ▼") : "";
      const th = el("th", { class: "sortable", "data-key": column.key, title: `sort by ${column.key}` },
        column.label + arrow);
      th.addEventListener("click", () => sortBy(column.key));
      header.appendChild(th);
    }
    thead.appendChild(groups);
    thead.appendChild(header);
    table.appendChild(thead);

    const tbody = el("tbody");
    for (const row of rows) {
      const classes = ["run"];
      if (selected.has(row.number)) classes.push("selected");
      if (row.number === bestRun) classes.push("best-run");
      const tr = el("tr", { class: classes.join(" "), "data-number": String(row.number) });
      const box = el("input", { type: "checkbox" });
      box.checked = selected.has(row.number);
      box.addEventListener("click", (event) => event.stopPropagation());
      box.addEventListener("change", () => toggle(row.number));
      const boxCell = el("td");
      boxCell.appendChild(box);
      tr.appendChild(boxCell);
      const best = new Set(row.best);
      row.cells.forEach((text, i) => {
        const td = el("td", {}, text);
        if (best.has(i)) {
          td.classList.add("best");
          td.title = "best value among the filtered runs";
        }
        if (columns[i].key === "status") td.classList.add(`status-${row.status}`);
        tr.appendChild(td);
      });
      tr.addEventListener("click", () => toggle(row.number));
      tbody.appendChild(tr);
    }
    table.appendChild(tbody);
    wrap.appendChild(table);

    const pager = el("div", { class: "nbtrack-pager" });
    const page = model.get("page");
    const count = model.get("page_count");
    const prev = el("button", { class: "prev" }, "◀");
    prev.disabled = page <= 0;
    prev.addEventListener("click", () => { model.set("page", page - 1); model.save_changes(); });
    const next = el("button", { class: "next" }, "▶");
    next.disabled = page >= count - 1;
    next.addEventListener("click", () => { model.set("page", page + 1); model.save_changes(); });
    pager.appendChild(prev);
    pager.appendChild(el("span", {}, ` page ${count ? page + 1 : 0} of ${count} `));
    pager.appendChild(next);
    pager.appendChild(el("span", { class: "nbtrack-count" }, model.get("summary")));

    root.replaceChildren(wrap, pager);
    if (!rows.length) {
      root.insertBefore(el("div", { class: "nbtrack-empty" }, model.get("empty_message")), pager);
    }
  }

  model.on("change", draw);
  draw();
  return () => model.off("change", draw);
}

export default { render };
