// docjobs board: confirmations before destructive actions, and live refresh that
// keeps the admin's place (no swap while they type, select text or hover a form).
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = (event.submitter && event.submitter.dataset.confirm) || form.dataset.confirm;
  if (!question) return;
  if (!window.confirm(question)) {
    event.preventDefault();
    return;
  }
  form.querySelector("input[name=confirm]").value = "yes";
});

function busy(main) {
  const active = document.activeElement;
  if (active && main.contains(active) && active.matches("input, textarea, select")) return true;
  if (String(window.getSelection() || "").length > 0) return true;
  if (main.querySelector("input[type=checkbox]:checked")) return true;
  for (const field of main.querySelectorAll("textarea")) {
    if (field.value !== field.defaultValue) return true;
  }
  return false;
}

async function refresh(main) {
  if (document.hidden || busy(main)) return;
  const response = await fetch(window.location.href, { credentials: "same-origin" });
  if (!response.ok || !response.headers.get("content-type", "").startsWith("text/html")) return;
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  const fresh = page.getElementById("live");
  if (fresh && !busy(main)) {
    main.replaceChildren(...fresh.childNodes);
    main.dataset.refreshedAt = new Date().toISOString();
  }
}

window.addEventListener("DOMContentLoaded", () => {
  const main = document.getElementById("live");
  const every = Number(main && main.dataset.live);
  if (!every) return;
  window.setInterval(() => refresh(main).catch(() => {}), every);
});

// board-overview: choosing a job on the trigger page shows its payload fields and example
// at once (the form's button does the same without script).
document.addEventListener("change", (event) => {
  const field = event.target;
  if (field instanceof HTMLSelectElement && field.hasAttribute("data-submit-on-change")) field.form.submit();
});
