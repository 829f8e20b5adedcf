// The console's one script: progressive enhancement only; every page works
// without it. A replay posts in the background and the page follows the
// exception's status until it leaves "replayed" (posted, or parked again).
"use strict";

async function postForm(form) {
  const body = new URLSearchParams(new FormData(form));
  const resp = await fetch(form.action, {
    method: "POST",
    headers: { "Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded" },
    body,
    credentials: "same-origin",
  });
  if (!resp.ok) throw new Error(await resp.text());
  return resp.json();
}

async function follow(url, statusEl, resultEl) {
  for (let i = 0; i < 120; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    const resp = await fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" });
    if (!resp.ok) continue;
    const s = await resp.json();
    statusEl.textContent = s.status;
    if (s.status === "resolved" && s.record === "posted") {
      resultEl.textContent = "Posted: the record is in the ERP and the exception is resolved.";
      return;
    }
    if (s.status === "resolved") {
      resultEl.textContent = "Resolved: the record went through; waiting for its document to post…";
    } else if (s.status !== "replayed") {
      resultEl.textContent = "The record failed again: " + s.message;
      return;
    }
  }
  resultEl.textContent = "Still waiting for the pipeline; this page will show the outcome when reloaded.";
}

document.addEventListener("DOMContentLoaded", () => {
  const replay = document.querySelector("form[data-replay]");
  const facts = document.getElementById("exception");
  if (replay && facts) {
    replay.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const statusEl = document.getElementById("status");
      const resultEl = document.getElementById("replay-result");
      resultEl.textContent = "Replaying…";
      try {
        const out = await postForm(replay);
        statusEl.textContent = out.status;
        resultEl.textContent = "Replayed; waiting for the pipeline…";
        await follow(facts.dataset.statusUrl, statusEl, resultEl);
      } catch (e) {
        resultEl.textContent = "Replay refused: " + e.message;
      }
    });
  }
});
