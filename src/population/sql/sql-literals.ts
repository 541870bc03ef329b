/** SQL literals for DuckDB text built here (values come from code and the validated value set, never from a
 * request, but they are quoted as if they did). */
export function sqlString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** A finite number written so DuckDB reads back the same double (JS prints the shortest round-trip form). */
export function sqlNumber(value: number): string {
  if (!Number.isFinite(value)) throw new Error(`not a finite number: ${value}`);
  return `${value}::DOUBLE`;
}

export function sqlStringList(values: readonly string[]): string {
  return `[${values.map(sqlString).join(', ')}]`;
}

/** `CASE x WHEN 'a' THEN 'b' ... END` from a key -> value table (NULL when no key matches). */
export function sqlLookup(expr: string, table: ReadonlyMap<string, string | number>): string {
  if (table.size === 0) return 'NULL';
  const arms = [...table].map(([k, v]) => `WHEN ${sqlString(k)} THEN ${typeof v === 'number' ? sqlNumber(v) : sqlString(v)}`);
  return `CASE ${expr} ${arms.join(' ')} END`;
}
