/**
 * One or two uppercase initials of a display name: "Ada Lovelace" → "AL", "ada" → "A".
 * Works on user-perceived characters, so "Émile" gives "É" and an emoji name its emoji.
 * @param {string} name
 * @returns {string}
 */
export function initials(name: string): string;
