// Tracemill pages: live fragments, keyboard navigation, job actions and math. No framework, no build.
"use strict";

// Live parts: an element with data-poll replaces its content with that URL's fragment every
// data-every ms, until the fragment says it is final (a finished job stops changing).
function poll(element) {
  const every = Number(element.dataset.every || 2000);
  const tick = async () => {
    try {
      const response = await fetch(element.dataset.poll, { headers: { Accept: "text/html" } });
      if (response.ok) {
        element.innerHTML = await response.text();
        renderMath(element);
      }
    } catch (error) {
      console.warn("refresh failed", error);
    }
    if (!element.querySelector("[data-final]")) setTimeout(tick, every);
  };
  if (!element.querySelector("[data-final]")) setTimeout(tick, every);
}

function renderMath(root) {
  if (typeof renderMathInElement !== "function") return; // KaTeX not installed: TeX stays as text
  root.querySelectorAll(".tex").forEach((element) => {
    katex.render(element.textContent, element, { throwOnError: false });
  });
  root.querySelectorAll(".math").forEach((element) =>
    renderMathInElement(element, {
      delimiters: [
        { left: "$$", right: "$$", display: true },
        { left: "\\[", right: "\\]", display: true },
        { left: "\\(", right: "\\)", display: false },
        { left: "$", right: "$", display: false },
      ],
      throwOnError: false,
    })
  );
}

// Keyboard: j/k or arrows move through the samples list, Enter opens; on a sample, j/k go to the
// next/previous sample and u back to the list; "/" focuses the search box.
function onKey(event) {
  const target = event.target;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (target.closest("input, select, textarea")) return;
  if (event.key === "/") {
    const search = document.querySelector('input[name="q"]');
    if (search) { event.preventDefault(); search.focus(); }
    return;
  }
  const links = Array.from(document.querySelectorAll(".sample-link"));
  const step = { j: 1, ArrowDown: 1, k: -1, ArrowUp: -1 }[event.key];
  if (links.length && step) {
    event.preventDefault();
    const current = links.indexOf(document.activeElement);
    const next = links[Math.max(0, Math.min(links.length - 1, current < 0 ? 0 : current + step))];
    document.querySelectorAll(".sample.current").forEach((e) => e.classList.remove("current"));
    next.closest(".sample").classList.add("current");
    next.focus();
    return;
  }
  const shortcut = document.querySelector(`[data-key="${event.key}"]`);
  if (shortcut) { event.preventDefault(); shortcut.click(); }
}

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.message || `HTTP ${response.status}`);
  return data;
}

async function followExport(exportId, say) {
  for (;;) {
    const response = await fetch(`/v1/exports/${exportId}`);
    const state = await response.json();
    if (state.status === "done") return say(`Exported ${state.rows_written} rows to ${state.location}`);
    if (state.status === "failed") return say(`Export failed: ${state.error}`, true);
    say(`Exporting… ${state.rows_written} rows`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

// Buttons live inside refreshed fragments, so clicks are handled on the document.
async function onClick(event) {
  const button = event.target.closest("button[data-action], button[data-export]");
  if (!button) return;
  const result = button.parentElement.querySelector(".action-result");
  const say = (text, failed = false) => {
    result.textContent = text;
    result.classList.toggle("error-message", failed);
  };
  if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
  button.disabled = true;
  try {
    if (button.dataset.export) {
      const started = await post("/v1/exports", { jobs: [button.dataset.export] });
      await followExport(started.id, say);
    } else {
      await post(button.dataset.action);
      window.location.reload();
    }
  } catch (error) {
    say(error.message, true);
  } finally {
    button.disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-poll]").forEach(poll);
  renderMath(document);
  document.addEventListener("keydown", onKey);
  document.addEventListener("click", onClick);
});
