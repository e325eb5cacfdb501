// A synchronous read that blocks in the kernel (a regular file on a hung NFS or FUSE mount, /proc/<pid>/environ
// of a process stuck holding its memory map lock) stops the main thread, and with it every JavaScript signal
// listener: SIGTERM would then wait for SIGKILL. So while the main thread runs code that reads files, SIGTERM
// and SIGINT keep their default action, which ends the process even in the middle of such a read: the
// listeners are taken off at the first read of a synchronous run (and when an exporter collector starts, for
// its readdir/stat calls) and put back in the microtask after it.
// The cost is one off/on pair per run that reads (~10 µs per signal measured), not per read. What is lost: a
// signal that arrives during such a run (a few ms per scrape) ends the process without its graceful shutdown.

type Listener = (...args: unknown[]) => void;

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;

let inSection = false;

/** Marks the current synchronous run as one that may block in the kernel; a flag test after the first call. */
export function enterFatalSignalSection(): void {
  if (inSection) return;
  inSection = true;
  const saved: [NodeJS.Signals, Listener[]][] = [];
  for (const s of SIGNALS) {
    if (process.listenerCount(s) === 0) continue;
    const listeners = process.rawListeners(s) as Listener[];
    saved.push([s, listeners]);
    for (const l of listeners) process.removeListener(s, l);
  }
  queueMicrotask(() => {
    inSection = false;
    // `once` listeners come back as their wrappers, so they still remove themselves when they fire
    for (const [s, listeners] of saved) for (const l of listeners) process.on(s, l);
  });
}
