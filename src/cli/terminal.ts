/**
 * Text for a terminal. What a plugin, a manifest or a catalog wrote
 * (descriptions, publishers, messages, URLs) is shown, never obeyed: control
 * characters, the invisible marks and overrides that reorder what is shown,
 * and the characters some terminals take as a line break become visible
 * escapes (`\x1b`, `\u202e`). An escape sequence could clear the screen or
 * retitle the window; a line break inside a field could add a fake row or a
 * fake "verifies: signed by …" line.
 */

const SHOWN_AS_ESCAPES = /[\p{Cc}\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu;

function escaped(c: string): string {
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** Whole output: its own line breaks and tabs kept, everything else above escaped. */
export function terminalSafe(text: string): string {
  return text.replace(SHOWN_AS_ESCAPES, (c) => (c === '\n' || c === '\t' ? c : escaped(c)));
}

/** One field (a table cell, a description, a finding's message): nothing in it may start a line. */
export function oneLine(text: string): string {
  return text.replace(SHOWN_AS_ESCAPES, escaped);
}

/** JSON for a terminal: the same characters as `\u` escapes, which leave the JSON as it was. */
export function jsonSafe(json: string): string {
  return json.replace(
    /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
