// Bindings to libbpf.so.1 (1.1+) and a few libc calls, through koffi. Internal to
// the loader: every other module goes through src/loader/index.ts.
import koffi from 'koffi';

const libbpf = koffi.load('libbpf.so.1');
const libc = koffi.load('libc.so.6');

const BpfObject = koffi.opaque('bpf_object');
const BpfMap = koffi.opaque('bpf_map');
const BpfProgram = koffi.opaque('bpf_program');
koffi.pointer('bpf_object_ptr', BpfObject);
koffi.pointer('bpf_map_ptr', BpfMap);
koffi.pointer('bpf_program_ptr', BpfProgram);

/** Opaque native handles: never dereferenced in JavaScript. */
export type NativePointer = object;

koffi.struct('bpf_test_run_opts', {
  sz: 'size_t',
  data_in: 'void *',
  data_out: 'void *',
  data_size_in: 'uint32_t',
  data_size_out: 'uint32_t',
  ctx_in: 'void *',
  ctx_out: 'void *',
  ctx_size_in: 'uint32_t',
  ctx_size_out: 'uint32_t',
  retval: 'uint32_t',
  repeat: 'int',
  duration: 'uint32_t',
  flags: 'uint32_t',
  cpu: 'uint32_t',
  batch_size: 'uint32_t',
});

export interface TestRunOpts {
  sz: number;
  data_in: Buffer | null;
  data_out: Buffer | null;
  data_size_in: number;
  data_size_out: number;
  ctx_in: Buffer | null;
  ctx_out: Buffer | null;
  ctx_size_in: number;
  ctx_size_out: number;
  retval: number;
  repeat: number;
  duration: number;
  flags: number;
  cpu: number;
  batch_size: number;
}

// libbpf's print callback hands us a va_list; vsnprintf formats it in C.
const PrintFn = koffi.proto('int libbpf_print_fn(int level, const char *fmt, void *args)');

type Fn<A extends unknown[], R> = (...args: A) => R;

export const native = {
  object_open_file: libbpf.func('bpf_object_ptr bpf_object__open_file(const char *path, void *opts)') as Fn<
    [string, null],
    NativePointer | null
  >,
  object_load: libbpf.func('int bpf_object__load(bpf_object_ptr obj)') as Fn<[NativePointer], number>,
  object_close: libbpf.func('void bpf_object__close(bpf_object_ptr obj)') as Fn<[NativePointer], void>,
  object_next_map: libbpf.func('bpf_map_ptr bpf_object__next_map(bpf_object_ptr obj, bpf_map_ptr map)') as Fn<
    [NativePointer, NativePointer | null],
    NativePointer | null
  >,
  object_next_program: libbpf.func(
    'bpf_program_ptr bpf_object__next_program(bpf_object_ptr obj, bpf_program_ptr prog)',
  ) as Fn<[NativePointer, NativePointer | null], NativePointer | null>,
  map_name: libbpf.func('const char *bpf_map__name(bpf_map_ptr map)') as Fn<[NativePointer], string>,
  map_fd: libbpf.func('int bpf_map__fd(bpf_map_ptr map)') as Fn<[NativePointer], number>,
  map_set_pin_path: libbpf.func('int bpf_map__set_pin_path(bpf_map_ptr map, const char *path)') as Fn<
    [NativePointer, string],
    number
  >,
  map_key_size: libbpf.func('uint32_t bpf_map__key_size(bpf_map_ptr map)') as Fn<[NativePointer], number>,
  map_value_size: libbpf.func('uint32_t bpf_map__value_size(bpf_map_ptr map)') as Fn<[NativePointer], number>,
  map_max_entries: libbpf.func('uint32_t bpf_map__max_entries(bpf_map_ptr map)') as Fn<[NativePointer], number>,
  map_type: libbpf.func('int bpf_map__type(bpf_map_ptr map)') as Fn<[NativePointer], number>,
  map_reuse_fd: libbpf.func('int bpf_map__reuse_fd(bpf_map_ptr map, int fd)') as Fn<[NativePointer, number], number>,
  map_set_max_entries: libbpf.func('int bpf_map__set_max_entries(bpf_map_ptr map, uint32_t n)') as Fn<
    [NativePointer, number],
    number
  >,
  program_name: libbpf.func('const char *bpf_program__name(bpf_program_ptr prog)') as Fn<[NativePointer], string>,
  program_fd: libbpf.func('int bpf_program__fd(bpf_program_ptr prog)') as Fn<[NativePointer], number>,
  program_set_log_level: libbpf.func('int bpf_program__set_log_level(bpf_program_ptr prog, uint32_t level)') as Fn<
    [NativePointer, number],
    number
  >,

  map_update_elem: libbpf.func(
    'int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)',
  ) as Fn<[number, Buffer, Buffer, number], number>,
  map_lookup_elem: libbpf.func('int bpf_map_lookup_elem(int fd, const void *key, void *value)') as Fn<
    [number, Buffer, Buffer],
    number
  >,
  map_delete_elem: libbpf.func('int bpf_map_delete_elem(int fd, const void *key)') as Fn<[number, Buffer], number>,
  map_get_next_key: libbpf.func('int bpf_map_get_next_key(int fd, const void *key, void *next_key)') as Fn<
    [number, Buffer | null, Buffer],
    number
  >,
  map_update_batch: libbpf.func(
    'int bpf_map_update_batch(int fd, const void *keys, const void *values, _Inout_ uint32_t *count, const void *opts)',
  ) as Fn<[number, Buffer, Buffer, number[], Buffer | null], number>,
  map_delete_batch: libbpf.func(
    'int bpf_map_delete_batch(int fd, const void *keys, _Inout_ uint32_t *count, const void *opts)',
  ) as Fn<[number, Buffer, number[], Buffer | null], number>,
  map_lookup_batch: libbpf.func(
    'int bpf_map_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values, _Inout_ uint32_t *count, void *opts)',
  ) as Fn<[number, Buffer | null, Buffer, Buffer, Buffer, number[], null], number>,
  obj_get: libbpf.func('int bpf_obj_get(const char *path)') as Fn<[string], number>,
  obj_pin: libbpf.func('int bpf_obj_pin(int fd, const char *path)') as Fn<[number, string], number>,
  obj_get_info_by_fd: libbpf.func('int bpf_obj_get_info_by_fd(int fd, void *info, _Inout_ uint32_t *len)') as Fn<
    [number, Buffer, number[]],
    number
  >,
  link_create: libbpf.func('int bpf_link_create(int prog_fd, int target_fd, int attach_type, const void *opts)') as Fn<
    [number, number, number, Buffer | null],
    number
  >,
  link_update: libbpf.func('int bpf_link_update(int link_fd, int new_prog_fd, const void *opts)') as Fn<
    [number, number, null],
    number
  >,
  link_detach: libbpf.func('int bpf_link_detach(int link_fd)') as Fn<[number], number>,
  tc_hook_create: libbpf.func('int bpf_tc_hook_create(void *hook)') as Fn<[Buffer], number>,
  tc_attach: libbpf.func('int bpf_tc_attach(const void *hook, void *opts)') as Fn<[Buffer, Buffer], number>,
  tc_detach: libbpf.func('int bpf_tc_detach(const void *hook, const void *opts)') as Fn<[Buffer, Buffer], number>,
  tc_query: libbpf.func('int bpf_tc_query(const void *hook, void *opts)') as Fn<[Buffer, Buffer], number>,
  xdp_query: libbpf.func('int bpf_xdp_query(int ifindex, int flags, void *opts)') as Fn<
    [number, number, Buffer],
    number
  >,
  prog_test_run_opts: libbpf.func('int bpf_prog_test_run_opts(int prog_fd, _Inout_ bpf_test_run_opts *opts)') as Fn<
    [number, TestRunOpts],
    number
  >,
  enable_stats: libbpf.func('int bpf_enable_stats(int type)') as Fn<[number], number>,
  set_print: libbpf.func('void *libbpf_set_print(libbpf_print_fn *fn)') as Fn<[unknown], unknown>,

  close: libc.func('int close(int fd)') as Fn<[number], number>,
  if_nametoindex: libc.func('unsigned int if_nametoindex(const char *name)') as Fn<[string], number>,
  if_indextoname: libc.func('const char *if_indextoname(unsigned int ifindex, _Out_ uint8_t *name)') as Fn<
    [number, Buffer],
    string | null
  >,
  vsnprintf: libc.func('int vsnprintf(_Out_ uint8_t *buf, size_t size, const char *fmt, void *args)') as Fn<
    [Buffer, number, string, unknown],
    number
  >,
  num_possible_cpus: libbpf.func('int libbpf_num_possible_cpus()') as Fn<[], number>,
};

export function lastErrno(): number {
  return koffi.errno();
}

/** libbpf returns -errno; some calls return -1 and leave errno set. */
export function errnoOf(ret: number): number {
  return ret < -1 ? -ret : koffi.errno() || -ret;
}

let printHandler: ((level: number, message: string) => void) | undefined;
let registeredPrint: unknown;

/** Route libbpf's log (including the verifier log of a failed load) to one handler. */
export function setLibbpfPrint(handler: (level: number, message: string) => void): void {
  printHandler = handler;
  if (registeredPrint !== undefined) return;
  const buffer = Buffer.alloc(16384);
  registeredPrint = koffi.register((level: number, fmt: string, args: unknown) => {
    const length = native.vsnprintf(buffer, buffer.length, fmt, args);
    const text = buffer.subarray(0, Math.max(0, Math.min(length, buffer.length - 1))).toString('utf8');
    printHandler?.(level, text);
    return 0;
  }, koffi.pointer(PrintFn));
  native.set_print(registeredPrint);
}
