// dialogs.js — the page's own small dialog for a reason (to kick a member, to disconnect a user):
// a modal <dialog> with one field, a confirming button and Cancel; Escape cancels. Never the
// browser's prompt(). It owns the dialog while it is open.

const $ = (id) => document.getElementById(id);

let waiting = null; // resolve() of the question on screen

/**
 * Ask for a reason: title (the dialog's heading), confirm (its button's words). Resolves with
 * the text typed (maybe "") or null if cancelled.
 */
export function askReason({ title, confirm }) {
  const dialog = $("reason-dialog");
  if (waiting) finish(null);
  $("reason-title").textContent = title;
  $("reason-ok").textContent = confirm;
  const field = $("reason-input");
  field.value = "";
  return new Promise((resolve) => {
    waiting = resolve;
    dialog.showModal();
    field.focus();
  });
}

function finish(value) {
  const resolve = waiting;
  waiting = null;
  const dialog = $("reason-dialog");
  if (dialog.open) dialog.close();
  if (resolve) resolve(value);
}

/** Wire the dialog's buttons (once, when the page loads). */
export function setUpReasonDialog() {
  $("reason-form").addEventListener("submit", (event) => {
    event.preventDefault();
    finish($("reason-input").value.trim());
  });
  $("reason-cancel").addEventListener("click", () => finish(null));
  $("reason-dialog").addEventListener("close", () => {
    if (!$("reason-dialog").open) finish(null); // Escape (a question asked since is left alone)
  });
}
