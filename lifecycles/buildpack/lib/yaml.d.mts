// Types for yaml.mjs (plain JavaScript, so that the lifecycle runs without a build).

export declare class YamlError extends Error {
  constructor(message: string, lineNumber?: number);
}

/** A parsed value: strings, null, arrays, and null-prototype objects. */
export type YamlValue = string | null | YamlValue[] | { [key: string]: YamlValue };

export declare function parseYaml(source: string): YamlValue;
export declare function isMapping(value: unknown): value is { [key: string]: YamlValue };
export declare function readStringMap(value: unknown, what: string): Record<string, string>;
