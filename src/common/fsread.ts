// The one file reader of the exporter's scrape paths (/proc, /sys, cgroupfs, its few config files). It never
// blocks on a special file and never reads without bound:
// * open(2) with O_NONBLOCK: opening a FIFO never waits for a writer (a unix socket fails with ENXIO), and a
//   read that would block (a FIFO with a writer, /proc/kmsg) answers EAGAIN instead;
// * at most `maxBytes` per file, then the read is refused (EFBIG): a truncated pseudo-file would be misparsed,
//   and an endless character device (/dev/zero) stops there;
// * whenever a read looks wrong (EAGAIN, EISDIR, nothing read, bound reached), fstat(2) of the descriptor names
//   what the path is: anything but a regular file is refused (EFTYPE) with its type in the error.
// The type is checked only then because fstat costs ~1.3 µs a file in Node (statx plus a Stats object):
// +7.6% CPU on a 1,000-job scrape when done for every file. What this leaves: a device whose driver ignores
// O_NONBLOCK and blocks in read(2); only root can create device nodes, and none lives under these trees.
// Symbolic links are followed: sysfs reaches hwmon, powercap and infiniband files through them.
// Reads stay synchronous into one reused buffer. Measured on this machine: 10,000 cgroup files take ~65 ms
// with readSync into a reused buffer, ~95 ms with readFileSync and ~800 ms with fs.promises.
// While the main thread runs code that reads, SIGTERM and SIGINT keep their default action (signalguard.ts):
// a read stuck in the kernel (a regular file on a hung filesystem) cannot hold back the stop of the process.

import { closeSync, constants, fstatSync, openSync, readSync, type Stats, statSync } from 'node:fs';
import { enterFatalSignalSection } from './signalguard.js';

/** A whole-file reader; collectors take one so that tests can substitute sysfs/procfs reads. */
export type ReadFile = (path: string) => string;

/**
 * Default bound of one file. The largest files of a scrape are a few KiB (/proc/stat, /proc/meminfo,
 * memory.stat: 1.1–1.5 KiB on this machine and in the fixtures; a sysfs attribute is at most one 4 KiB page),
 * so 1 MiB leaves a wide margin and bounds the time and memory a huge or endless file can take (~1 ms).
 */
export const MAX_FILE_BYTES = 1 << 20;

/** Bound of /proc/<pid>/{environ,cmdline}: execve(2) caps argv + envp at 3/4 of _STK_LIM (8 MiB) = 6 MiB. */
export const MAX_PROC_ARGS_BYTES = 6 << 20;

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

/** A path refused without reading it whole: not a regular file (EFTYPE) or longer than its bound (EFBIG). */
export class RefusedFileError extends Error {
  constructor(
    readonly code: 'EFTYPE' | 'EFBIG',
    readonly path: string,
    reason: string,
  ) {
    super(`${reason}: ${path}`);
    this.name = 'RefusedFileError';
  }
}

function fileType(st: Stats): string {
  if (st.isFIFO()) return 'FIFO';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'character device';
  if (st.isBlockDevice()) return 'block device';
  if (st.isDirectory()) return 'directory';
  return 'special file';
}

function notRegular(path: string, st: Stats): RefusedFileError {
  return new RefusedFileError('EFTYPE', path, `not a regular file (${fileType(st)})`);
}

function tooLarge(path: string, maxBytes: number): RefusedFileError {
  return new RefusedFileError('EFBIG', path, `larger than ${maxBytes} bytes, not read`);
}

function open(path: string): number {
  try {
    return openSync(path, OPEN_FLAGS);
  } catch (e) {
    // open(2) of a unix socket fails with ENXIO: name what the path is instead
    if ((e as NodeJS.ErrnoException).code === 'ENXIO') {
      let st: Stats | undefined;
      try {
        st = statSync(path);
      } catch {
        // gone meanwhile: report the open error
      }
      if (st && !st.isFile()) throw notRegular(path, st);
    }
    throw e;
  }
}

let buf = Buffer.allocUnsafe(64 * 1024);

/** Refuses `fd` unless it is a regular file; called when a read looked wrong. */
function checkRegular(fd: number, path: string): void {
  const st = fstatSync(fd);
  if (!st.isFile()) throw notRegular(path, st);
}

/**
 * Reads a whole regular file into the reader's buffer and returns its length: the bytes are
 * `fileBuffer()[0, length)`, valid until the next read. For parsers that work on bytes, so that the hot
 * paths create no string per file. Throws like readFileFast.
 */
export function readFileBytes(path: string, maxBytes = MAX_FILE_BYTES): number {
  enterFatalSignalSection();
  const fd = open(path);
  try {
    // one byte more than the bound tells a file of exactly `maxBytes` from a longer one
    const want = maxBytes + 1;
    let len = 0;
    for (;;) {
      if (len === buf.length) {
        const bigger = Buffer.allocUnsafe(Math.min(buf.length * 2, want));
        buf.copy(bigger, 0, 0, len);
        buf = bigger;
      }
      let n: number;
      try {
        n = readSync(fd, buf, len, Math.min(buf.length, want) - len, null);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' || code === 'EISDIR') checkRegular(fd, path);
        throw e;
      }
      if (n === 0) break;
      len += n;
      if (len > maxBytes) {
        checkRegular(fd, path);
        throw tooLarge(path, maxBytes);
      }
    }
    // a FIFO without a writer reads as empty: an empty file is the one result that needs its type checked
    if (len === 0) checkRegular(fd, path);
    return len;
  } finally {
    closeSync(fd);
  }
}

/** The buffer readFileBytes reads into (it may be replaced by a larger one on a later read). */
export function fileBuffer(): Buffer {
  return buf;
}

/**
 * Reads a whole regular file as UTF-8. Throws the fs error unchanged (ENOENT, EACCES, EAGAIN, ...) and
 * RefusedFileError for a special file or a file longer than `maxBytes`.
 */
export function readFileFast(path: string, maxBytes = MAX_FILE_BYTES): string {
  const len = readFileBytes(path, maxBytes);
  return buf.toString('utf8', 0, len);
}

/** Reads a file and trims surrounding whitespace; undefined when it does not exist or cannot be read. */
export function readTrimmed(path: string): string | undefined {
  try {
    return readFileFast(path).trim();
  } catch {
    return undefined;
  }
}

/** Reads a file holding one number; undefined when missing/unreadable/not numeric. */
export function readNumber(path: string): number | undefined {
  const s = readTrimmed(path);
  if (s === undefined || s === '') return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? n : undefined;
}
