// SPDX-License-Identifier: GPL-2.0
// The ebpf sub-collector's programs (spec exporter.md §10.2), attached to the kernel's tracepoints only: the
// syscall tracepoints for file IO and file operations, sock:sock_{send,recv}_length for network traffic,
// tcp:tcp_retransmit_skb for retransmissions (sock:inet_sock_set_state forgets closed sockets' owners).
// Tracepoints are a stable ABI and need neither kprobes nor
// fentry (which kernels without ftrace function tracing lack); the few kernel structs read (the task's
// cgroup on v1, an fd's mount, a socket buffer's length) are reached through CO-RE relocations.
//
// Only syscall exits are traced: the record has the result, the registers saved at the syscall's entry
// still hold its arguments (the fd, the open flags), which halves the programs run per syscall against an
// enter/exit pair and needs no map between them.
//
// Every counter is keyed by the cgroup id of the current task (cgroup v2: bpf_get_current_cgroup_id; v1:
// the cgroup of subsystem `cgroup_v1_subsys`). The exporter maps ids to units and deletes keys of ended
// cgroups; the maps are bounded and nothing is pinned, so everything goes when the exporter's fds close.
//
// Build: ./build.sh, for x86-64 (the committed ceems.bpf.o must be what it builds: its check runs in
// test/unit/exporter/ebpf/collector.test.ts).

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

// -1: cgroup v2; otherwise the v1 subsystem index (its line in /proc/cgroups) of the walked hierarchy.
const volatile int cgroup_v1_subsys = -1;

// ---- the kernel structs read, CO-RE-relocated against the running kernel's BTF ----

struct kernfs_node {
	__u64 id;
} __attribute__((preserve_access_index));
struct cgroup {
	struct kernfs_node *kn;
} __attribute__((preserve_access_index));
struct cgroup_subsys_state {
	struct cgroup *cgroup;
} __attribute__((preserve_access_index));
struct css_set {
	// bound for the compiler only: the verifier checks the index against the kernel's CGROUP_SUBSYS_COUNT
	struct cgroup_subsys_state *subsys[16];
} __attribute__((preserve_access_index));
struct vfsmount {
	int mnt_flags;
} __attribute__((preserve_access_index));
struct mount {
	struct vfsmount mnt;
	int mnt_id;
} __attribute__((preserve_access_index));
struct path {
	struct vfsmount *mnt;
} __attribute__((preserve_access_index));
struct file {
	struct path f_path;
} __attribute__((preserve_access_index));
struct fdtable {
	unsigned int max_fds;
	struct file **fd;
} __attribute__((preserve_access_index));
struct files_struct {
	struct fdtable *fdt;
} __attribute__((preserve_access_index));
struct task_struct {
	struct css_set *cgroups;
	struct files_struct *files;
} __attribute__((preserve_access_index));
struct sk_buff {
	unsigned int len;
} __attribute__((preserve_access_index));
struct open_how {
	__u64 flags;
};
#if defined(__TARGET_ARCH_x86)
// the user registers saved at syscall entry; a syscall's exit still finds its arguments there
struct pt_regs {
	unsigned long di;
	unsigned long si;
	unsigned long dx;
} __attribute__((preserve_access_index));
#else
#error "syscall argument registers are only defined for x86-64 (build with -D__TARGET_ARCH_x86)"
#endif

// ---- tracepoint records (include/trace/events/{syscalls,sock,tcp}.h; formats under tracefs events/) ----

struct sys_exit_args {
	__u64 common;
	__s64 nr;
	__s64 ret;
};
struct sock_length_args {
	__u64 common;
	const void *sk;
	__u16 family;
	__u16 protocol;
	int ret;
	int flags;
};
struct sock_state_args {
	__u64 common;
	const void *skaddr;
	int oldstate;
	int newstate;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u16 protocol;
};
struct tcp_retransmit_args {
	__u64 common;
	const void *skbaddr;
	const void *skaddr;
	int state;
	__u16 sport;
	__u16 dport;
	__u16 family;
};

// ---- maps ----

struct io_key {
	__u64 cgroup;
	__u32 mnt_id;
	__u32 pad;
};
struct io_counts {
	__u64 bytes, requests, errors;
};
struct io_value {
	struct io_counts read, write;
};
struct op_counts {
	__u64 requests, errors;
};
struct file_value {
	struct op_counts open, create, unlink;
};
struct net_key {
	__u64 cgroup;
	__u16 protocol;
	__u16 family;
	__u32 pad;
};
struct net_value {
	__u64 ingress_packets, ingress_bytes;
	__u64 egress_packets, egress_bytes;
	__u64 retrans_packets, retrans_bytes;
};

// read/write bytes, requests and errors per cgroup and mount
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct io_key);
	__type(value, struct io_value);
} io_stats SEC(".maps");

// open/create/unlink requests and errors per cgroup
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct file_value);
} file_stats SEC(".maps");

// packets and bytes per cgroup, protocol and address family
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct net_key);
	__type(value, struct net_value);
} net_stats SEC(".maps");

// the cgroup of the last task that sent or received on a TCP socket, until it closes: retransmissions run
// in softirq context
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} sock_owner SEC(".maps");

// ---- helpers ----

static __always_inline __u64 current_cgroup(void)
{
	if (cgroup_v1_subsys < 0)
		return bpf_get_current_cgroup_id();
	// direct loads through the task's BTF pointer (no helper call per step); the index is a constant once
	// loaded (.rodata), so the verifier checks the access like a field's
	struct task_struct *task = bpf_get_current_task_btf();
	struct cgroup_subsys_state *css = task->cgroups->subsys[cgroup_v1_subsys & 15];
	if (!css)
		return 0;
	return css->cgroup->kn->id;
}

/** The mount id (as /proc/<pid>/mountinfo shows it) of the current task's fd, 0 when there is none. */
static __always_inline __u32 fd_mount(__u64 fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = task->files->fdt;
	if (fd >= fdt->max_fds)
		return 0;
	struct file *f = 0;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fdt->fd[fd]) || !f)
		return 0;
	struct vfsmount *mnt = BPF_CORE_READ(f, f_path.mnt);
	if (!mnt)
		return 0;
	struct mount *m = (void *)mnt - bpf_core_field_offset(struct mount, mnt);
	return BPF_CORE_READ(m, mnt_id);
}

static __always_inline void *slot(void *map, const void *key, const void *zero)
{
	void *v = bpf_map_lookup_elem(map, key);
	if (v)
		return v;
	bpf_map_update_elem(map, key, zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(map, key);
}

/** Argument `n` (0-2) of the current task's syscall, from the registers saved at its entry. */
static __always_inline unsigned long syscall_arg(int n)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	if (n == 0)
		return BPF_CORE_READ(regs, di);
	if (n == 1)
		return BPF_CORE_READ(regs, si);
	return BPF_CORE_READ(regs, dx);
}

// ---- file IO: read/write bytes, requests and errors per mount ----

static __always_inline int io_exit(struct sys_exit_args *ctx, int write)
{
	__u32 mnt = fd_mount(syscall_arg(0));
	if (!mnt)
		return 0;
	struct io_key key = {.cgroup = current_cgroup(), .mnt_id = mnt};
	struct io_value zero = {};
	struct io_value *v = slot(&io_stats, &key, &zero);
	if (!v)
		return 0;
	long ret = ctx->ret;
	struct io_counts *c = write ? &v->write : &v->read;
	__sync_fetch_and_add(&c->requests, 1);
	if (ret < 0)
		__sync_fetch_and_add(&c->errors, 1);
	else
		__sync_fetch_and_add(&c->bytes, ret);
	return 0;
}

// exit only: the fd is still in the saved registers, the result in the record
#define IO_SYSCALL(name, write)                 \
	SEC("tracepoint/syscalls/sys_exit_" #name) \
	int exit_##name(struct sys_exit_args *ctx) { return io_exit(ctx, write); }

IO_SYSCALL(read, 0)
IO_SYSCALL(readv, 0)
IO_SYSCALL(pread64, 0)
IO_SYSCALL(preadv, 0)
IO_SYSCALL(preadv2, 0)
IO_SYSCALL(write, 1)
IO_SYSCALL(writev, 1)
IO_SYSCALL(pwrite64, 1)
IO_SYSCALL(pwritev, 1)
IO_SYSCALL(pwritev2, 1)

// ---- file operations: open (every open), create (O_CREAT opens, creat, mkdir), unlink (unlink, rmdir) ----

#define OP_OPEN 1
#define OP_CREATE 2
#define OP_UNLINK 4
#define O_CREAT_FLAG 0100

static __always_inline void count_op(struct op_counts *c, int failed)
{
	__sync_fetch_and_add(&c->requests, 1);
	if (failed)
		__sync_fetch_and_add(&c->errors, 1);
}

static __always_inline int op_exit(struct sys_exit_args *ctx, __u64 ops)
{
	__u64 cgroup = current_cgroup();
	struct file_value zero = {};
	struct file_value *v = slot(&file_stats, &cgroup, &zero);
	if (!v)
		return 0;
	int failed = ctx->ret < 0;
	if (ops & OP_OPEN)
		count_op(&v->open, failed);
	if (ops & OP_CREATE)
		count_op(&v->create, failed);
	if (ops & OP_UNLINK)
		count_op(&v->unlink, failed);
	return 0;
}

static __always_inline __u64 open_ops(__u64 flags)
{
	return OP_OPEN | ((flags & O_CREAT_FLAG) ? OP_CREATE : 0);
}

#define OP_SYSCALL(name, ops)                   \
	SEC("tracepoint/syscalls/sys_exit_" #name) \
	int exit_##name(struct sys_exit_args *ctx) { return op_exit(ctx, ops); }

OP_SYSCALL(open, open_ops(syscall_arg(1)))
OP_SYSCALL(openat, open_ops(syscall_arg(2)))
OP_SYSCALL(creat, OP_OPEN | OP_CREATE)
OP_SYSCALL(mkdir, OP_CREATE)
OP_SYSCALL(mkdirat, OP_CREATE)
OP_SYSCALL(unlink, OP_UNLINK)
OP_SYSCALL(unlinkat, OP_UNLINK)
OP_SYSCALL(rmdir, OP_UNLINK)

static __always_inline __u64 openat2_ops(void)
{
	struct open_how how = {};
	bpf_probe_read_user(&how, sizeof(how), (void *)syscall_arg(2));
	return open_ops(how.flags);
}
OP_SYSCALL(openat2, openat2_ops())

// ---- network: TCP and UDP over IPv4 and IPv6 ----

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define MSG_PEEK 2

static __always_inline struct net_value *net_slot(__u64 cgroup, __u16 protocol, __u16 family)
{
	struct net_key key = {.cgroup = cgroup, .protocol = protocol, .family = family};
	struct net_value zero = {};
	return slot(&net_stats, &key, &zero);
}

#define TCP_CLOSE 7

/** Notes who uses a TCP socket, for its retransmissions. */
static __always_inline void own_socket(struct sock_length_args *ctx, __u64 cgroup)
{
	if (ctx->protocol != IPPROTO_TCP)
		return;
	__u64 sk = (__u64)ctx->sk;
	__u64 *owner = bpf_map_lookup_elem(&sock_owner, &sk);
	if (!owner || *owner != cgroup)
		bpf_map_update_elem(&sock_owner, &sk, &cgroup, BPF_ANY);
}

static __always_inline int counted(struct sock_length_args *ctx)
{
	return ctx->ret > 0 && (ctx->family == AF_INET || ctx->family == AF_INET6) &&
	       (ctx->protocol == IPPROTO_TCP || ctx->protocol == IPPROTO_UDP);
}

SEC("tracepoint/sock/sock_send_length")
int sock_send(struct sock_length_args *ctx)
{
	if (!counted(ctx))
		return 0;
	__u64 cgroup = current_cgroup();
	struct net_value *v = net_slot(cgroup, ctx->protocol, ctx->family);
	if (v) {
		__sync_fetch_and_add(&v->egress_packets, 1);
		__sync_fetch_and_add(&v->egress_bytes, ctx->ret);
	}
	own_socket(ctx, cgroup);
	return 0;
}

SEC("tracepoint/sock/sock_recv_length")
int sock_recv(struct sock_length_args *ctx)
{
	// a peek leaves the data to be received (and counted) again
	if (!counted(ctx) || (ctx->flags & MSG_PEEK))
		return 0;
	__u64 cgroup = current_cgroup();
	struct net_value *v = net_slot(cgroup, ctx->protocol, ctx->family);
	if (v) {
		__sync_fetch_and_add(&v->ingress_packets, 1);
		__sync_fetch_and_add(&v->ingress_bytes, ctx->ret);
	}
	own_socket(ctx, cgroup);
	return 0;
}

SEC("tracepoint/tcp/tcp_retransmit_skb")
int tcp_retransmit(struct tcp_retransmit_args *ctx)
{
	__u64 sk = (__u64)ctx->skaddr;
	__u64 *owner = bpf_map_lookup_elem(&sock_owner, &sk);
	if (!owner)
		return 0;
	struct net_value *v = net_slot(*owner, IPPROTO_TCP, ctx->family);
	const struct sk_buff *skb = ctx->skbaddr;
	if (v) {
		__sync_fetch_and_add(&v->retrans_packets, 1);
		__sync_fetch_and_add(&v->retrans_bytes, BPF_CORE_READ(skb, len));
	}
	return 0;
}

// a closed socket's address may be reused by another's: its owner goes with it
SEC("tracepoint/sock/inet_sock_set_state")
int sock_state(struct sock_state_args *ctx)
{
	if (ctx->protocol == IPPROTO_TCP && ctx->newstate == TCP_CLOSE) {
		__u64 sk = (__u64)ctx->skaddr;
		bpf_map_delete_elem(&sock_owner, &sk);
	}
	return 0;
}
