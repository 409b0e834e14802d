// rerankq dashboard: keyboard shortcuts. Everything also works without this file (plain links and forms).
"use strict";

(function () {
  const help = document.getElementById("help");
  const form = document.getElementById("review-form");
  const rows = Array.from(document.querySelectorAll("tr.case-row"));
  const docs = Array.from(document.querySelectorAll("li.doc"));
  let pendingG = false;
  let current = -1;

  function typing(target) {
    if (!target || !target.tagName) return false;
    const tag = target.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable) return true;
    return tag === "INPUT" && !["radio", "checkbox", "button", "submit"].includes(target.type);
  }

  function toggleHelp(show) {
    if (help) help.hidden = show === undefined ? !help.hidden : !show;
  }

  function go(href) {
    if (href) window.location.href = href;
  }

  // ---- queue: move a selection over the rows, open with Enter ----
  function selectRow(index) {
    if (!rows.length) return;
    current = Math.max(0, Math.min(rows.length - 1, index));
    rows.forEach((row, i) => row.classList.toggle("selected", i === current));
    rows[current].scrollIntoView({ block: "nearest" });
  }

  rows.forEach((row, i) => {
    row.addEventListener("click", (event) => {
      if (event.target.closest("a")) return;
      selectRow(i);
      go(row.dataset.href);
    });
  });

  // ---- case: a current document, graded from the keyboard ----
  function setCurrent(index, scroll) {
    if (!docs.length) return;
    current = Math.max(0, Math.min(docs.length - 1, index));
    docs.forEach((doc, i) => doc.classList.toggle("current", i === current));
    if (scroll !== false) docs[current].scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  function docIndex() {
    return docs[current].dataset.index;
  }

  function gradedCount() {
    const counter = document.getElementById("graded-count");
    if (!counter) return;
    counter.textContent = docs.filter((doc) => doc.querySelector('.grades input:checked:not([value=""])')).length;
  }

  function grade(value, advance) {
    if (current < 0) setCurrent(0);
    const input = document.getElementById(`g${docIndex()}-${value === null ? "none" : value}`);
    if (input) input.checked = true;
    gradedCount();
    if (advance && current < docs.length - 1) setCurrent(current + 1);
  }

  function markBest() {
    if (current < 0) setCurrent(0);
    const index = docIndex();
    const best = document.getElementById(`best-${index}`);
    if (best) best.checked = true;
    const checked = docs[current].querySelector(".grades input:checked");
    if (!checked || checked.value === "" || Number(checked.value) < 2) grade(3, false);
  }

  function submit(decision) {
    const button = form.querySelector(`button[name="decision"][value="${decision}"]`);
    if (form.requestSubmit) form.requestSubmit(button);
    else button.click();
  }

  docs.forEach((doc, i) => {
    doc.addEventListener("click", () => setCurrent(i, false));
  });
  if (form) {
    form.addEventListener("change", gradedCount);
    const note = form.querySelector("textarea[name=note]");
    if (note) {
      note.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
          event.preventDefault();
          submit("reviewed");
        }
      });
    }
    if (docs.length) setCurrent(0, false);
  }

  const caseKeys = {
    j: () => setCurrent(current + 1), ArrowDown: () => setCurrent(current + 1),
    k: () => setCurrent(current - 1), ArrowUp: () => setCurrent(current - 1),
    y: () => grade(2, true), n: () => grade(0, true),
    0: () => grade(0, true), 1: () => grade(1, true), 2: () => grade(2, true), 3: () => grade(3, true),
    c: () => grade(null, false), b: () => markBest(),
    e: () => form.querySelector("textarea[name=note]").focus(),
    Enter: () => submit("reviewed"), x: () => submit("dismissed"),
    s: () => go((document.querySelector("[data-action=skip]") || {}).href),
    u: () => go((document.querySelector("[data-action=queue]") || {}).href),
  };
  const queueKeys = {
    j: () => selectRow(current + 1), ArrowDown: () => selectRow(current + 1),
    k: () => selectRow(current - 1), ArrowUp: () => selectRow(current - 1),
    Enter: () => current >= 0 && go(rows[current].dataset.href),
    o: () => go(rows[Math.max(current, 0)] && rows[Math.max(current, 0)].dataset.href),
  };
  const places = { q: "/dashboard/queue", o: "/dashboard/overview", j: "/dashboard/jobs", p: "/dashboard/playground" };

  document.addEventListener("click", (event) => {
    if (event.target.closest("[data-action=help]")) toggleHelp();
    else if (help && event.target === help) toggleHelp(false);
  });

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      toggleHelp(false);
      if (typing(event.target)) event.target.blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if (pendingG) {
      pendingG = false;
      if (places[event.key]) {
        event.preventDefault();
        go(places[event.key]);
      }
      return;
    }
    if (event.key === "g") { pendingG = true; setTimeout(() => { pendingG = false; }, 1200); return; }
    if (event.key === "?") { event.preventDefault(); toggleHelp(); return; }
    if (help && !help.hidden) return;
    if (event.key === "/") {
      const search = document.getElementById("search");
      if (search) { event.preventDefault(); search.focus(); search.select(); }
      return;
    }
    const keys = form ? caseKeys : rows.length ? queueKeys : null;
    if (keys && keys[event.key]) {
      event.preventDefault();
      keys[event.key]();
    }
  });
})();
