// The published declarations stay readable (issue 15): PresenceIndicators.d.ts once
// spelled out every CSS property in 1,887 lines, because the components declared no
// return type. No generated .d.ts of either package may exceed 300 lines, nor import a
// package the packages do not declare (it once imported csstype).

import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const clients = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const MAX_LINES = 300;

const declarations = ["js", "react"].flatMap((pkg) => {
  const folder = path.join(clients, pkg, "types");
  return readdirSync(folder)
    .filter((name) => name.endsWith(".d.ts"))
    .map((name) => ({ name: `${pkg}/types/${name}`, text: readFileSync(path.join(folder, name), "utf8") }));
});

describe("the generated .d.ts files", () => {
  it("exist", () => {
    expect(declarations.map((file) => file.name)).toContain("react/types/PresenceIndicators.d.ts");
  });

  it.each(declarations.map((file) => [file.name, file.text]))(`%s has at most ${MAX_LINES} lines`, (_name, text) => {
    expect(text.split("\n").length).toBeLessThanOrEqual(MAX_LINES);
  });

  it.each(declarations.map((file) => [file.name, file.text]))("%s imports only react and @presenced/client", (_name, text) => {
    const imported = [...text.matchAll(/(?:from |import\()"([^".][^"]*)"/g)].map((match) => match[1]);
    // The package's name: "@scope/name" of "@scope/name/sub/path.js", "name" of "name/sub".
    const packages = imported.map((specifier) => specifier.split("/").slice(0, specifier.startsWith("@") ? 2 : 1).join("/"));
    for (const name of packages) expect(["react", "@presenced/client"]).toContain(name);
  });
});
