// Types of bin/build.mjs (plain JavaScript so that bin/vbmd.js needs no TypeScript loader).
export declare const ROOT: string;
export declare const DIST: string;
export declare const BUILD_INFO: string;
export declare function buildCli(options?: { outDir?: string; quiet?: boolean }): Promise<{ outDir: string; files: number; inputs: number; ms: number }>;
export declare function isBuildFresh(outDir?: string): boolean;
