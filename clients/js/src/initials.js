// The letter(s) shown in an avatar circle, shared by the demo and the React bindings.

/**
 * One or two uppercase initials of a display name: "Ada Lovelace" → "AL", "ada" → "A".
 * Works on user-perceived characters, so "Émile" gives "É" and an emoji name its emoji.
 * @param {string} name
 * @returns {string}
 */
export function initials(name) {
  const words = String(name ?? "").trim().split(/\s+/).filter(Boolean);
  if (words.length === 0) return "?";
  const first = firstGrapheme(words[0]);
  const last = words.length > 1 ? firstGrapheme(words[words.length - 1]) : "";
  return (first + last).toUpperCase();
}

/** @param {string} word */
function firstGrapheme(word) {
  const Segmenter = /** @type {any} */ (Intl).Segmenter;
  if (typeof Segmenter === "function") {
    for (const { segment } of new Segmenter(undefined, { granularity: "grapheme" }).segment(word)) {
      return segment;
    }
  }
  return Array.from(word)[0] ?? "";
}
