// Node.js fs errors carry the errno name in `code`; collectors branch on it (ENOENT = no data, EACCES = privileges).

/** The errno name of a Node.js system error (`ENOENT`, `EACCES`, ...), undefined for other errors. */
export function errnoCode(e: unknown): string | undefined {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** True when the file or directory does not exist (possibly removed while it was being read). */
export function isNotFound(e: unknown): boolean {
  const code = errnoCode(e);
  return code === 'ENOENT' || code === 'ENOTDIR';
}
