// linkify.js — finds web addresses in a text and builds it as DOM nodes: plain text nodes, and
// <a> elements only for http:// and https:// addresses. Never parses markup: whatever a user
// typed stays text (so "<script>" or "javascript:alert(1)" is shown as typed).

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"'`]+/gi;
const TRAILING = /[.,;:!?'"*_~]+$/;

/** Split text into [{text}, {url}] parts. */
export function splitLinks(text) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    let url = match[0];
    // Leave out trailing punctuation, and a closing bracket that has no opening one in the link.
    for (;;) {
      const trimmed = url.replace(TRAILING, "");
      const closers = { ")": "(", "]": "[", "}": "{" };
      const end = trimmed.at(-1);
      if (end in closers && count(trimmed, end) > count(trimmed, closers[end])) {
        url = trimmed.slice(0, -1);
        continue;
      }
      url = trimmed;
      break;
    }
    if (!safeUrl(url)) continue;
    if (match.index > last) parts.push({ text: text.slice(last, match.index) });
    parts.push({ url });
    last = match.index + url.length;
  }
  if (last < text.length) parts.push({ text: text.slice(last) });
  return parts;
}

function count(text, char) {
  return text.split(char).length - 1;
}

/** The address if it is a well-formed http or https URL, else null. */
export function safeUrl(candidate) {
  try {
    const url = new URL(candidate);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

/** Append `text` to `parent` as text nodes and safe links. */
export function appendLinkified(parent, text) {
  for (const part of splitLinks(text)) {
    if (part.text !== undefined) {
      parent.append(document.createTextNode(part.text));
    } else {
      const link = document.createElement("a");
      link.href = safeUrl(part.url);
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      link.textContent = part.url;
      parent.append(link);
    }
  }
}
