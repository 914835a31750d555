// SPDX-License-Identifier: MIT
/*
 * A QEMU TCG plugin that watches guest accesses to a physical address window and
 * reports every one that is not naturally aligned (address % access size != 0).
 *
 * Why: on arm64 an unaligned access to Device memory (sysfs resource2, /dev/mem,
 * VFIO) takes an alignment fault, but Debian 12's QEMU 7.2 does not emulate that
 * fault under TCG (it came with TLB_CHECK_ALIGNED in later QEMU). This plugin is
 * the oracle instead: tests/vm/test_arm64.py runs the aarch64 guest's uncached
 * phase with it, over -M virt's 64-bit PCIe window where the ivshmem BAR2s live,
 * and fails on any unaligned access it records (a deliberate one proves it works).
 *
 *   -plugin devmem_align.so,lo=0x8000000000,hi=0x10000000000,out=FILE
 *
 * FILE gets one line per unaligned access (at most MAX_REPORTS):
 *   unaligned phys=0x... size=N store=0|1 vaddr=0x...
 * and, when QEMU exits normally, a summary: "accesses N unaligned M".
 *
 * Only the few declarations of QEMU's plugin API (version 1, as in QEMU 7.2's
 * include/qemu/qemu-plugin.h) that this file uses are repeated here: Debian ships
 * plugin support in qemu-system-* but not the header.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the plugin API subset (QEMU_PLUGIN_VERSION 1) ------------------------------ */
typedef uint64_t qemu_plugin_id_t;
typedef uint32_t qemu_plugin_meminfo_t;
typedef struct qemu_info_t qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
struct qemu_plugin_hwaddr;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_mem_rw { QEMU_PLUGIN_MEM_R = 1, QEMU_PLUGIN_MEM_W, QEMU_PLUGIN_MEM_RW };
typedef void (*qemu_plugin_vcpu_mem_cb_t)(unsigned int vcpu_index, qemu_plugin_meminfo_t info,
					  uint64_t vaddr, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
void qemu_plugin_register_vcpu_mem_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_mem_cb_t cb,
				      enum qemu_plugin_cb_flags flags, enum qemu_plugin_mem_rw rw,
				      void *userdata);
unsigned int qemu_plugin_mem_size_shift(qemu_plugin_meminfo_t info);
bool qemu_plugin_mem_is_store(qemu_plugin_meminfo_t info);
struct qemu_plugin_hwaddr *qemu_plugin_get_hwaddr(qemu_plugin_meminfo_t info, uint64_t vaddr);
uint64_t qemu_plugin_hwaddr_phys_addr(const struct qemu_plugin_hwaddr *haddr);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);

#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))
QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;
QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
					   int argc, char **argv);

/* ---- the plugin ------------------------------------------------------------------ */
#define MAX_REPORTS 100

static uint64_t win_lo, win_hi;		/* watched physical window [lo, hi) */
static FILE *out;
static atomic_uint_fast64_t accesses;	/* inside the window */
static atomic_uint_fast64_t unaligned;

static void on_mem(unsigned int vcpu, qemu_plugin_meminfo_t info, uint64_t vaddr, void *udata)
{
	unsigned int shift = qemu_plugin_mem_size_shift(info);
	struct qemu_plugin_hwaddr *hw;
	uint64_t phys, n;

	(void)vcpu;
	(void)udata;
	hw = qemu_plugin_get_hwaddr(info, vaddr);
	if (!hw)
		return;
	phys = qemu_plugin_hwaddr_phys_addr(hw);
	if (phys < win_lo || phys >= win_hi)
		return;
	atomic_fetch_add(&accesses, 1);
	if (!(vaddr & ((UINT64_C(1) << shift) - 1)))
		return;
	n = atomic_fetch_add(&unaligned, 1);
	if (n < MAX_REPORTS) {
		fprintf(out, "unaligned phys=0x%" PRIx64 " size=%u store=%d vaddr=0x%" PRIx64 "\n",
			phys, 1u << shift, qemu_plugin_mem_is_store(info), vaddr);
		fflush(out);
	}
}

static void on_tb(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	size_t i, n = qemu_plugin_tb_n_insns(tb);

	(void)id;
	for (i = 0; i < n; i++)
		qemu_plugin_register_vcpu_mem_cb(qemu_plugin_tb_get_insn(tb, i), on_mem,
						 QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_MEM_RW, NULL);
}

static void on_qemu_exit(qemu_plugin_id_t id, void *udata)
{
	(void)id;
	(void)udata;
	fprintf(out, "accesses %" PRIuFAST64 " unaligned %" PRIuFAST64 "\n",
		atomic_load(&accesses), atomic_load(&unaligned));
	fclose(out);
}

static bool arg_u64(const char *arg, const char *key, uint64_t *val)
{
	size_t n = strlen(key);
	char *end;

	if (strncmp(arg, key, n) != 0 || arg[n] != '=')
		return false;
	*val = strtoull(arg + n + 1, &end, 0);
	return *end == '\0';
}

int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
	const char *path = NULL;
	int i;

	(void)info;
	for (i = 0; i < argc; i++) {
		if (strncmp(argv[i], "out=", 4) == 0)
			path = argv[i] + 4;
		else if (!arg_u64(argv[i], "lo", &win_lo) && !arg_u64(argv[i], "hi", &win_hi)) {
			fprintf(stderr, "devmem_align: unknown argument %s\n", argv[i]);
			return -1;
		}
	}
	if (!path || win_hi <= win_lo) {
		fprintf(stderr, "devmem_align: needs lo=ADDR,hi=ADDR,out=FILE\n");
		return -1;
	}
	out = fopen(path, "w");
	if (!out) {
		perror(path);
		return -1;
	}
	setvbuf(out, NULL, _IOLBF, 0);
	qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb);
	qemu_plugin_register_atexit_cb(id, on_qemu_exit, NULL);
	return 0;
}
