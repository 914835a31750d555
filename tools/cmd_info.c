// SPDX-License-Identifier: MIT
/*
 * ivshmem info: backend, size, memory type, peer id, vectors, layout and the
 * state of every channel, as text or one JSON object (--json).
 *
 * Everything is collected first (under the removal guard) into struct facts,
 * then printed by one of two printers, so text and JSON never disagree.
 */
#include "dev.h"

#include "ivshmem/layout.h"
#include "ivshmem/ring.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * docs/channel.md: the channel section's control page. Versions 1 and 2 share
 * these offsets (2 changed the ring's record format, not its control block).
 */
#define CH_MAGIC	"IVSHCHAN"
#define CH_VERSION_MAX	2u
#define CH_PAGE		4096u
#define CH_SLOT(i)	(128u + 128u * (i))
#define CH_RING_CTRL(i)	(512u + 512u * (i))

struct channel_facts {
	const char *error;	/* NULL: the fields below are valid */
	uint64_t ring_cap, epoch;
	struct {
		uint32_t state;	/* 0 free, 1 open, 2 closed */
		uint32_t peer_id;
		uint64_t heartbeat;
	} slot[2];
	int64_t used[2];	/* ring i carries slot i -> slot 1-i; <0: corrupt */
};

struct facts {
	char memtype[96];	/* "write-back", "uncached-minus", "unknown" */
	const char *memtype_source;
	int layout;		/* 1 ok, 0 none, <0 corrupt */
	char layout_error[256];
	char name[IVSHMEM_LAYOUT_NAME_LEN];
	int nsec;
	struct ivshmem_section sec[IVSHMEM_LAYOUT_DIR_MAX];
	struct channel_facts ch[IVSHMEM_LAYOUT_DIR_MAX];
};

/* ---- memory type ----------------------------------------------------------------------- */

#define PAT_LIST "/sys/kernel/debug/x86/pat_memtype_list"

/*
 * The x86 PAT record covering @phys ("write-back", "uncached-minus", ...). The
 * kernel keeps one per mapped physical range while it is mapped, which this
 * command's own mapping guarantees. Needs root and debugfs.
 */
static int pat_type(uint64_t phys, char *out, size_t len)
{
	FILE *f = fopen(PAT_LIST, "r");
	char line[256], type[64];
	unsigned long long start, end;
	int found = -ENOENT;

	if (!f)
		return -errno;
	while (found < 0 && fgets(line, sizeof(line), f))
		if (sscanf(line, "PAT: [mem 0x%llx-0x%llx] %63s", &start, &end, type) == 3 &&
		    phys >= start && phys < end) {
			snprintf(out, len, "%s", type);
			found = 0;
		}
	fclose(f);
	return found;
}

static void memory_type(const struct dev *d, struct facts *f)
{
	enum ivshmem_backend b = ivshmem_backend_of(d->r);
	int ret;

	if (b == IVSHMEM_BACKEND_FILE || b == IVSHMEM_BACKEND_SERVER) {
		snprintf(f->memtype, sizeof(f->memtype), "write-back");
		f->memtype_source = "host RAM";
		return;
	}
	if (!d->is_pci || !d->pci.mem_phys) {
		snprintf(f->memtype, sizeof(f->memtype), "unknown");
		f->memtype_source = "no BAR2 address";
		return;
	}
#if !defined(__x86_64__) && !defined(__i386__)
	/* No PAT elsewhere: the mapping's attributes are what the backend asked for. */
	snprintf(f->memtype, sizeof(f->memtype), ivshmem_is_device_memory(d->r) ? "device (uncached)"
									     : "write-back");
	f->memtype_source = ivshmem_is_device_memory(d->r) ? "a sysfs, vfio or /dev/mem mapping"
							    : "the driver's cacheable mapping";
	return;
#endif
	ret = pat_type(d->pci.mem_phys, f->memtype, sizeof(f->memtype));
	if (ret == 0) {
		f->memtype_source = PAT_LIST;
		return;
	}
	snprintf(f->memtype, sizeof(f->memtype), "unknown");
	f->memtype_source = ret == -ENOENT && access(PAT_LIST, R_OK) == 0
				    ? "no PAT record covers BAR2"
				    : "needs root and debugfs (" PAT_LIST ")";
}

/* ---- channels ------------------------------------------------------------------------- */

static uint32_t le32_at(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static uint64_t le64_at(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

/*
 * Look at a channel from outside, without opening it: one copy of its control
 * page, validated like an opener would, and each ring's fill from the public
 * ring API attached to that private copy (attach and used() read only the
 * control block, never the data area).
 */
static void channel_facts(struct ivshmem_region *r, const struct ivshmem_section *s,
			  struct channel_facts *c)
{
	static uint64_t no_data;	/* never dereferenced: used() reads indices only */
	uint64_t page[CH_PAGE / 8];
	uint8_t *p = (uint8_t *)page;

	memset(c, 0, sizeof(*c));
	if (s->size < CH_PAGE || ivshmem_read(r, s->offset, page, CH_PAGE) < 0) {
		c->error = "unreadable channel section";
		return;
	}
	c->ring_cap = le64_at(p + 16);
	c->epoch = le64_at(p + 24);
	if (memcmp(p, CH_MAGIC, 8) != 0 || le32_at(p + 8) < 1 || le32_at(p + 8) > CH_VERSION_MAX) {
		c->error = "not a channel this tool knows (bad magic or version)";
		return;
	}
	if (c->ring_cap < 4096 || c->ring_cap > (1ull << 40) || (c->ring_cap & (c->ring_cap - 1)) ||
	    CH_PAGE + 2 * c->ring_cap > s->size) {
		c->error = "corrupt ring size";
		return;
	}
	for (int i = 0; i < 2; i++) {
		struct ivshmem_ring ring;

		c->slot[i].state = le32_at(p + CH_SLOT(i));
		c->slot[i].peer_id = le32_at(p + CH_SLOT(i) + 4);
		c->slot[i].heartbeat = le64_at(p + CH_SLOT(i) + 16);
		c->used[i] = ivshmem_ring_attach(&ring, p + CH_RING_CTRL(i), &no_data, c->ring_cap,
						 IVSHMEM_RING_CONSUMER);
		if (c->used[i] == 0)
			c->used[i] = ivshmem_ring_used(&ring);
	}
}

/* Slot states (docs/channel.md): 0 FREE, 1 OPEN, 2 CLOSED, 3 ABORTED (ivshmem_channel_abort()). */
static const char *const slot_states[] = { "free", "open", "closed", "aborted" };
#define SLOT_STATES	(sizeof(slot_states) / sizeof(slot_states[0]))

static const char *slot_state(uint32_t s)
{
	return s < SLOT_STATES ? slot_states[s] : "invalid";
}

/*
 * One word for the pair of slots, as a third party sees it: idle (no end open;
 * a CLOSED or ABORTED slot is reusable), waiting (one end open, the other free),
 * peer-closed or peer-aborted (one end open, the other left), connected.
 * Liveness needs time: not judged.
 */
static const char *channel_state(const struct channel_facts *c)
{
	uint32_t a = c->slot[0].state, b = c->slot[1].state;

	if (a >= SLOT_STATES || b >= SLOT_STATES)
		return "corrupt";
	if (a == 1 && b == 1)
		return "connected";
	if (a == 1 || b == 1)
		return a == 3 || b == 3 ? "peer-aborted" : a == 2 || b == 2 ? "peer-closed" : "waiting";
	return "idle";
}

static const char *section_type(uint32_t t)
{
	return t == IVSHMEM_SECTION_CHANNEL ? "channel" : t == IVSHMEM_SECTION_RAW ? "raw" : "other";
}

/* Runs under the removal guard: every read of the mapping happens here. */
static int collect_layout(struct ivshmem_region *r, void *arg)
{
	struct facts *f = arg;
	int n;

	f->layout = ivshmem_layout_name(r, f->name, sizeof(f->name));
	if (f->layout < 0) {
		snprintf(f->layout_error, sizeof(f->layout_error), "%s", ivshmem_errmsg());
		return f->layout == -ENODEV ? -ENODEV : 0;
	}
	if (f->layout == 0)
		return 0;
	n = ivshmem_layout_list(r, f->sec, IVSHMEM_LAYOUT_DIR_MAX);
	if (n < 0) {
		f->layout = n;
		snprintf(f->layout_error, sizeof(f->layout_error), "%s", ivshmem_errmsg());
		return n == -ENODEV ? -ENODEV : 0;
	}
	f->nsec = n < (int)IVSHMEM_LAYOUT_DIR_MAX ? n : (int)IVSHMEM_LAYOUT_DIR_MAX;
	for (int i = 0; i < f->nsec; i++)
		if (f->sec[i].type == IVSHMEM_SECTION_CHANNEL)
			channel_facts(r, &f->sec[i], &f->ch[i]);
	return 0;
}

static int print_layout(struct ivshmem_region *r, void *arg)
{
	(void)arg;
	return ivshmem_layout_print(r, stdout);
}

/* ---- text ------------------------------------------------------------------------------ */

static void print_text(const char *target, struct dev *d, struct facts *f)
{
	char sz[32];
	int id = ivshmem_own_id(d->r);
	unsigned int nv = ivshmem_vectors(d->r);
	bool file = ivshmem_backend_of(d->r) == IVSHMEM_BACKEND_FILE;

	printf("target:        %s\n", target);
	if (d->is_pci) {
		struct ivshmem_pci_dev *p = &d->pci;

		printf("pci address:   %s\n", p->bdf);
		printf("type:          %s\n", p->doorbell ? "ivshmem-doorbell (MSI-X)" : "ivshmem-plain");
		printf("revision:      %u\n", p->revision);
		printf("driver:        %s\n", p->driver[0] ? p->driver : "(none)");
		printf("bar2:          0x%" PRIx64 " (%" PRIu64 " bytes)\n", p->mem_phys, p->mem_size);
		if (p->iommu_group[0])
			printf("iommu group:   %s\n", p->iommu_group);
	}
	printf("backend:       %s\n", ivshmem_backend_name(ivshmem_backend_of(d->r)));
	printf("size:          %s (%" PRIu64 " bytes)\n",
	       dev_human_size(ivshmem_size(d->r), sz, sizeof(sz)), ivshmem_size(d->r));
	printf("memory type:   %s (%s)\n", f->memtype, f->memtype_source);
	printf("device memory: %s\n", ivshmem_is_device_memory(d->r)
					  ? "yes (the library copies with aligned accesses only)"
					  : "no (any access works)");
	if (id >= 0)
		printf("own peer id:   %d\n", id);
	else
		printf("own peer id:   (none)\n");
	printf("vectors:       %u%s\n", nv, nv ? "" : file
	       ? " (a file has no interrupts; on the host use server:SOCKET)"
	       : " (this backend cannot deliver interrupts)");
	if (f->layout == 0)
		printf("layout:        none (unformatted region)\n");
	else if (f->layout < 0)
		printf("layout:        %s\n", f->layout_error);
	if (f->layout <= 0 || ivshmem_guarded(d->r, print_layout, NULL) < 0)
		return;
	for (int i = 0; i < f->nsec; i++) {
		const struct channel_facts *c = &f->ch[i];

		if (f->sec[i].type != IVSHMEM_SECTION_CHANNEL)
			continue;
		if (c->error) {
			printf("channel %s: %s\n", f->sec[i].name, c->error);
			continue;
		}
		printf("channel %s: %s, slots %s/%s, ring %" PRIu64 " bytes each way",
		       f->sec[i].name, channel_state(c), slot_state(c->slot[0].state),
		       slot_state(c->slot[1].state), c->ring_cap);
		for (int k = 0; k < 2; k++) {
			if (c->used[k] < 0)
				printf(", %d->%d corrupt", k, 1 - k);
			else
				printf(", %d->%d %" PRId64 " bytes queued", k, 1 - k, c->used[k]);
		}
		printf("\n");
	}
}

/* ---- JSON ------------------------------------------------------------------------------ */

static void json_channel(const struct channel_facts *c)
{
	printf(", \"channel\": {");
	if (c->error) {
		printf("\"error\": ");
		dev_json_string(c->error);
		printf("}");
		return;
	}
	printf("\"state\": \"%s\", \"ring_cap\": %" PRIu64 ", \"epoch\": %" PRIu64 ", \"slots\": [",
	       channel_state(c), c->ring_cap, c->epoch);
	for (int k = 0; k < 2; k++) {
		printf("%s{\"state\": \"%s\", \"peer_id\": ", k ? ", " : "",
		       slot_state(c->slot[k].state));
		if (c->slot[k].state == 0 || c->slot[k].peer_id == 0xffffffffu)
			printf("null");
		else
			printf("%" PRIu32, c->slot[k].peer_id);
		printf(", \"heartbeat\": %" PRIu64 "}", c->slot[k].heartbeat);
	}
	printf("], \"rings\": [");
	for (int k = 0; k < 2; k++) {
		printf("%s{\"from_slot\": %d, \"to_slot\": %d, \"used\": ", k ? ", " : "", k, 1 - k);
		if (c->used[k] < 0)
			printf("null, \"error\": \"corrupt indices\"");
		else
			printf("%" PRId64, c->used[k]);
		printf(", \"cap\": %" PRIu64 "}", c->ring_cap);
	}
	printf("]}");
}

static void print_json(const char *target, struct dev *d, struct facts *f)
{
	int id = ivshmem_own_id(d->r);

	printf("{\"target\": ");
	dev_json_string(target);
	printf(", \"pci\": ");
	if (d->is_pci) {
		struct ivshmem_pci_dev *p = &d->pci;

		printf("{\"bdf\": \"%s\", \"type\": \"%s\", \"revision\": %u, \"driver\": ", p->bdf,
		       p->doorbell ? "doorbell" : "plain", p->revision);
		if (p->driver[0])
			dev_json_string(p->driver);
		else
			printf("null");
		printf(", \"bar2_phys\": \"0x%" PRIx64 "\", \"bar2_size\": %" PRIu64 ", \"iommu_group\": ",
		       p->mem_phys, p->mem_size);
		if (p->iommu_group[0])
			dev_json_string(p->iommu_group);
		else
			printf("null");
		printf("}");
	} else {
		printf("null");
	}
	printf(", \"backend\": \"%s\", \"size\": %" PRIu64 ", \"memory_type\": ",
	       ivshmem_backend_name(ivshmem_backend_of(d->r)), ivshmem_size(d->r));
	dev_json_string(f->memtype);
	printf(", \"memory_type_source\": ");
	dev_json_string(f->memtype_source);
	printf(", \"device_memory\": %s, \"own_id\": ",
	       ivshmem_is_device_memory(d->r) ? "true" : "false");
	if (id >= 0)
		printf("%d", id);
	else
		printf("null");
	printf(", \"vectors\": %u, \"layout\": ", ivshmem_vectors(d->r));
	if (f->layout == 0) {
		printf("null}\n");
		return;
	}
	if (f->layout < 0) {
		printf("{\"status\": \"corrupt\", \"error\": ");
		dev_json_string(f->layout_error);
		printf("}}\n");
		return;
	}
	printf("{\"status\": \"ok\", \"name\": ");
	dev_json_string(f->name);
	printf(", \"sections\": [");
	for (int i = 0; i < f->nsec; i++) {
		const struct ivshmem_section *s = &f->sec[i];

		printf("%s\n    {\"name\": ", i ? "," : "");
		dev_json_string(s->name);
		printf(", \"type\": \"%s\", \"offset\": %" PRIu64 ", \"size\": %" PRIu64,
		       section_type(s->type), s->offset, s->size);
		if (s->type == IVSHMEM_SECTION_CHANNEL)
			json_channel(&f->ch[i]);
		printf("}");
	}
	printf("%s]}}\n", f->nsec ? "\n  " : "");
}

int cmd_info(int argc, char **argv)
{
	const struct ivshmem_cmd *cmd = cmd_find("info");
	const char *target = NULL;
	struct facts *f;
	struct opts o;
	struct dev d;
	int ret;

	ret = dev_open_one(cmd, argc, argv, ALLOW(OPT_BACKEND) | ALLOW(OPT_JSON),
			   IVSHMEM_OPEN_READONLY, &o, &d, &target);
	if (ret)
		return ret;
	f = calloc(1, sizeof(*f));
	if (!f) {
		ivshmem_close(d.r);
		return cmd_error(cmd, EXIT_FAIL, "out of memory");
	}
	memory_type(&d, f);
	ret = ivshmem_guarded(d.r, collect_layout, f);
	if (ret == -ENODEV) {
		ret = cmd_error(cmd, EXIT_NODEV, "%s", ivshmem_errmsg());
	} else {
		if (o.json)
			print_json(target, &d, f);
		else
			print_text(target, &d, f);
		fflush(stdout);
		/* A corrupt header is a failure for scripts, though everything else was shown. */
		ret = f->layout < 0 ? cmd_error(cmd, EXIT_FAIL, "%s: %s", target, f->layout_error)
				    : EXIT_OK;
	}
	free(f);
	ivshmem_close(d.r);
	return ret;
}
