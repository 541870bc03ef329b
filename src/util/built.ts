declare const __VBMD_DIST__: string | undefined;

/**
 * The folder of the built JavaScript when this process runs it (bin/build.mjs bundles src/cli.ts into dist/
 * and defines __VBMD_DIST__ as that folder, relative to the repository), undefined when the TypeScript sources
 * run through tsx (the tests, `tsx src/cli.ts`). Worker threads start from the same kind of code as their
 * parent: built workers load no TypeScript loader and compile nothing.
 */
export const BUILT_DIR: URL | undefined =
  typeof __VBMD_DIST__ === 'string' ? new URL(__VBMD_DIST__, new URL('../../', import.meta.url)) : undefined;

/** A worker's entry: `<name>.js` of the build when running built, else `source` (a .mjs that loads the TypeScript). */
export function workerEntry(name: string, source: URL): URL {
  return BUILT_DIR ? new URL(`${name}.js`, BUILT_DIR) : source;
}
