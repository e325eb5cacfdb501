// libbpf (Debian's libbpf1, ≥ 1.0) through the koffi FFI library that src/common/syscall.ts uses: the
// loader of the ebpf sub-collector. libbpf and not a loader of our own because the programs read kernel
// structs whose layout differs between kernels (the v1 cgroup of a task, the mount of an fd): libbpf applies
// their CO-RE relocations against the kernel's BTF, which a loader of our own would have to reimplement
// (BTF parsing, relocation of field offsets in the instructions; libbpf's relo_core.c is ~1,400 lines),
// while the calls below are all the FFI it takes. Loaded on first use, through syscall.ts's koffi (the one
// module that loads it, also inside the single executable).

import { ffi, SyscallError } from '../../common/syscall.js';

type KoffiModule = ReturnType<typeof ffi>;
/** An opaque libbpf object (struct bpf_object *, bpf_program *, bpf_map *, bpf_link *). */
export type Handle = object;
type Fn = (...args: unknown[]) => unknown;

interface Libbpf {
  koffi: KoffiModule;
  openMem: Fn;
  load: Fn;
  close: Fn;
  nextProgram: Fn;
  programName: Fn;
  sectionName: Fn;
  setAutoload: Fn;
  attach: Fn;
  destroyLink: Fn;
  findMap: Fn;
  mapFd: Fn;
  keySize: Fn;
  valueSize: Fn;
  maxEntries: Fn;
  setInitialValue: Fn;
  lookupBatch: Fn;
  deleteElem: Fn;
  updateElem: Fn;
}

let lib: Libbpf | undefined;

function load(): Libbpf {
  if (lib) return lib;
  const koffi = ffi();
  const so = koffi.load('libbpf.so.1');
  // libbpf prints its own warnings to stderr; the collector reports failures in the exporter's log instead
  so.func('void *libbpf_set_print(void *)')(null);
  lib = {
    koffi,
    openMem: so.func('void *bpf_object__open_mem(const void *, size_t, const void *)'),
    load: so.func('int bpf_object__load(void *)'),
    close: so.func('void bpf_object__close(void *)'),
    nextProgram: so.func('void *bpf_object__next_program(void *, void *)'),
    programName: so.func('const char *bpf_program__name(void *)'),
    sectionName: so.func('const char *bpf_program__section_name(void *)'),
    setAutoload: so.func('int bpf_program__set_autoload(void *, bool)'),
    attach: so.func('void *bpf_program__attach(void *)'),
    destroyLink: so.func('int bpf_link__destroy(void *)'),
    findMap: so.func('void *bpf_object__find_map_by_name(void *, const char *)'),
    mapFd: so.func('int bpf_map__fd(void *)'),
    keySize: so.func('uint32_t bpf_map__key_size(void *)'),
    valueSize: so.func('uint32_t bpf_map__value_size(void *)'),
    maxEntries: so.func('uint32_t bpf_map__max_entries(void *)'),
    setInitialValue: so.func('int bpf_map__set_initial_value(void *, const void *, size_t)'),
    lookupBatch: so.func(
      'int bpf_map_lookup_batch(int, void *, void *, void *, void *, uint32_t *, const void *)',
    ),
    deleteElem: so.func('int bpf_map_delete_elem(int, const void *)'),
    updateElem: so.func('int bpf_map_update_elem(int, const void *, const void *, uint64_t)'),
  };
  return lib;
}

/** libbpf's int calls return a negative errno. */
function checkInt(call: string, r: unknown): number {
  const n = r as number;
  if (n < 0) throw new SyscallError(call, -n);
  return n;
}

/** libbpf's pointer calls return NULL and set errno. */
function checkPointer(call: string, fn: () => unknown): Handle {
  const l = load();
  l.koffi.errno(0);
  const p = fn();
  if (p === null) throw new SyscallError(call, l.koffi.errno() || 22);
  return p as Handle;
}

export interface Program {
  readonly handle: Handle;
  readonly name: string;
  /** ELF section, e.g. `tracepoint/syscalls/sys_exit_read`. */
  readonly section: string;
}

/** bpf_object__open_mem: parses the ELF object (nothing reaches the kernel yet). */
export function openObject(elf: Buffer): Handle {
  return checkPointer('bpf_object__open_mem', () => load().openMem(elf, elf.length, null));
}

export function programs(obj: Handle): Program[] {
  const l = load();
  const out: Program[] = [];
  for (let p = l.nextProgram(obj, null); p !== null; p = l.nextProgram(obj, p))
    out.push({
      handle: p as Handle,
      name: l.programName(p) as string,
      section: l.sectionName(p) as string,
    });
  return out;
}

/** Whether bpf_object__load loads (and bpf_program__attach may attach) the program. */
export function setAutoload(p: Program, on: boolean): void {
  checkInt(`bpf_program__set_autoload(${p.name})`, load().setAutoload(p.handle, on));
}

/** The map named `name` (`.rodata` for the object's constants); throws when the object has none. */
export function findMap(obj: Handle, name: string): Handle {
  return checkPointer(`bpf_object__find_map_by_name(${name})`, () => load().findMap(obj, name));
}

/** Sets a map's contents before load (the `const volatile` globals of `.rodata`). */
export function setInitialValue(map: Handle, data: Buffer): void {
  checkInt('bpf_map__set_initial_value', load().setInitialValue(map, data, data.length));
}

/** Creates the maps and loads the programs (BPF_MAP_CREATE, BPF_PROG_LOAD with CO-RE relocations). */
export function loadObject(obj: Handle): void {
  checkInt('bpf_object__load', load().load(obj));
}

/** Closes the object: its maps' and programs' fds (the kernel frees what no link still holds). */
export function closeObject(obj: Handle): void {
  load().close(obj);
}

/** Attaches a program as its section says (tracepoint: perf_event_open + BPF link); returns the link. */
export function attach(p: Program): Handle {
  return checkPointer(`attach ${p.section}`, () => load().attach(p.handle));
}

/** Detaches and frees a link. */
export function destroyLink(link: Handle): void {
  load().destroyLink(link);
}

export interface MapInfo {
  readonly fd: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
}

/** The fd and sizes of a loaded map. */
export function mapInfo(map: Handle): MapInfo {
  const l = load();
  return {
    fd: checkInt('bpf_map__fd', l.mapFd(map)),
    keySize: l.keySize(map) as number,
    valueSize: l.valueSize(map) as number,
    maxEntries: l.maxEntries(map) as number,
  };
}

/**
 * Every entry of a hash map with BPF_MAP_LOOKUP_BATCH calls (a few per scrape instead of two calls per
 * entry): `keys` and `values` must hold max_entries entries. Returns how many entries were read.
 */
export function lookupAll(map: MapInfo, keys: Buffer, values: Buffer): number {
  const l = load();
  const { fd, keySize, valueSize, maxEntries: capacity } = map;
  const token = Buffer.alloc(Math.max(8, keySize));
  const next = Buffer.alloc(token.length);
  let total = 0;
  for (let first = true; total < capacity; first = false) {
    const count = new Uint32Array([capacity - total]);
    const r = l.lookupBatch(
      fd,
      first ? null : token,
      next,
      keys.subarray(total * keySize),
      values.subarray(total * valueSize),
      count,
      null,
    ) as number;
    total += count[0]!;
    if (r === -2) break; // ENOENT: the map's end
    checkInt('bpf_map_lookup_batch', r);
    next.copy(token);
  }
  return total;
}

/** Deletes one entry; an entry already gone is no error. */
export function deleteEntry(fd: number, key: Buffer): void {
  const r = load().deleteElem(fd, key) as number;
  if (r !== -2) checkInt('bpf_map_delete_elem', r);
}

/** Sets one entry (BPF_ANY); the benchmark fills maps as 1,000 running units would. */
export function updateEntry(fd: number, key: Buffer, value: Buffer): void {
  checkInt('bpf_map_update_elem', load().updateElem(fd, key, value, 0));
}
