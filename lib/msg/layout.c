// SPDX-License-Identifier: MIT
/*
 * lib/msg: the region layout: header, name and directory (docs/layout.md).
 * Uses the public region API, core (errors) and format (the header bytes).
 *
 * Every read goes through ivshmem_read() into a local copy, so it is safe on
 * uncached mappings and every field is fetched exactly once before it is
 * validated. Only the lock and the publication of a directory entry use
 * atomics on the mapping, which is why adding sections needs cacheable memory.
 */
#include "ivshmem/layout.h"

#include "core/error.h"
#include "format/layout_header.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOCK_STALE_NS	2000000000LL	/* a lock held this long by one token is presumed dead */
#define LOCK_GIVEUP_NS	10000000000LL	/* never wait longer than this for the lock */

/* 1 valid (*h filled), 0 no header, <0 corrupt. The whole header is copied once. */
static int read_header(const struct ivshmem_region *r, struct ivshmem_layout_header *h,
		       uint8_t *raw)
{
	int ret;

	if (ivshmem_size(r) < IVSHMEM_LAYOUT_HEADER_SIZE)
		return 0;	/* too small to hold one: treat as unformatted */
	ret = ivshmem_read(r, 0, raw, IVSHMEM_LAYOUT_HEADER_SIZE);
	if (ret < 0)
		return ret;
	return ivshmem_layout_header_decode(raw, ivshmem_size(r), h);
}

static bool valid_name(const char *name, size_t max)
{
	size_t n = strnlen(name, max);

	if (n == 0 || n >= max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return false;
	return true;
}

/*
 * Decode entry @i of a header snapshot: 1 in use and valid, 0 free,
 * <0 in use but invalid (*why says how). Overlaps are checked by the caller.
 */
static int decode_entry(const struct ivshmem_layout_header *h, const uint8_t *raw, unsigned int i,
			struct ivshmem_section *s, const char **why)
{
	const uint8_t *e = raw + IVSHMEM_LAYOUT_DIR_OFFSET + i * IVSHMEM_LAYOUT_DIR_ENTRY_SIZE;

	memset(s, 0, sizeof(*s));
	s->type = ivshmem_get_le32(e + IVSHMEM_E_TYPE);
	if (s->type == IVSHMEM_SECTION_FREE)
		return 0;
	memcpy(s->name, e + IVSHMEM_E_NAME, IVSHMEM_SECTION_NAME_LEN);
	s->flags = ivshmem_get_le32(e + IVSHMEM_E_FLAGS);
	s->offset = ivshmem_get_le64(e + IVSHMEM_E_OFFSET);
	s->size = ivshmem_get_le64(e + IVSHMEM_E_SIZE);
	s->slot = i;
	if (!memchr(s->name, 0, IVSHMEM_SECTION_NAME_LEN) ||
	    !valid_name(s->name, IVSHMEM_SECTION_NAME_LEN)) {
		s->name[IVSHMEM_SECTION_NAME_LEN - 1] = '\0';
		*why = "bad name";
		return -EBADMSG;
	}
	if (s->type != IVSHMEM_SECTION_CHANNEL && s->type != IVSHMEM_SECTION_RAW) {
		*why = "unknown type";
		return -EBADMSG;
	}
	if (s->offset < IVSHMEM_LAYOUT_HEADER_SIZE || s->offset % IVSHMEM_SECTION_ALIGN ||
	    s->size == 0 || s->size % IVSHMEM_SECTION_ALIGN || s->offset > h->region_size ||
	    s->size > h->region_size - s->offset) {
		*why = "offset/size out of range or misaligned";
		return -EBADMSG;
	}
	return 1;
}

static bool overlaps(const struct ivshmem_section *a, const struct ivshmem_section *b)
{
	return a->offset < b->offset + b->size && b->offset < a->offset + a->size;
}

/*
 * All valid entries of a snapshot, in slot order. An entry overlapping an
 * earlier valid one is invalid. Returns the count; bad[] marks invalid slots.
 */
static unsigned int decode_dir(const struct ivshmem_layout_header *h, const uint8_t *raw,
			       struct ivshmem_section *secs, int *bad, const char **whys)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < h->dir_capacity; i++) {
		struct ivshmem_section s;
		const char *why = NULL;
		int ret = decode_entry(h, raw, i, &s, &why);

		bad[i] = 0;
		if (ret > 0) {
			for (unsigned int j = 0; j < n; j++) {
				if (overlaps(&s, &secs[j])) {
					ret = -EBADMSG;
					why = "overlaps another section";
					break;
				}
				if (strcmp(s.name, secs[j].name) == 0) {
					ret = -EBADMSG;
					why = "duplicate name";
					break;
				}
			}
		}
		if (ret < 0) {
			bad[i] = 1;
			whys[i] = why;
		} else if (ret > 0) {
			secs[n++] = s;
		}
	}
	return n;
}

int ivshmem_layout_name(const struct ivshmem_region *r, char *name, size_t len)
{
	uint8_t raw[IVSHMEM_LAYOUT_HEADER_SIZE];
	struct ivshmem_layout_header h;
	int ret = read_header(r, &h, raw);

	if (name && len)
		name[0] = '\0';
	if (ret <= 0)
		return ret;
	if (name && len) {
		strncpy(name, h.name, len - 1);
		name[len - 1] = '\0';
	}
	return 1;
}

static const char *type_name(uint32_t type)
{
	switch (type) {
	case IVSHMEM_SECTION_CHANNEL:
		return "channel";
	case IVSHMEM_SECTION_RAW:
		return "raw";
	default:
		return "unknown";
	}
}

/* Printable copy of a possibly hostile string. */
static void sanitize(char *dst, const char *src, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len && src[i]; i++)
		dst[i] = ((unsigned char)src[i] < 0x20 || src[i] == 0x7f) ? '?' : src[i];
	dst[i] = '\0';
}

int ivshmem_layout_print(const struct ivshmem_region *r, FILE *out)
{
	uint8_t raw[IVSHMEM_LAYOUT_HEADER_SIZE];
	struct ivshmem_section secs[IVSHMEM_LAYOUT_DIR_MAX];
	const char *whys[IVSHMEM_LAYOUT_DIR_MAX];
	int bad[IVSHMEM_LAYOUT_DIR_MAX];
	char name[IVSHMEM_LAYOUT_NAME_LEN];
	struct ivshmem_layout_header h;
	unsigned int n, used = 0;
	int ret = read_header(r, &h, raw);

	if (ret <= 0)
		return ret;
	n = decode_dir(&h, raw, secs, bad, whys);
	sanitize(name, h.name, sizeof(name));
	fprintf(out, "layout:       version %u\n", IVSHMEM_LAYOUT_VERSION);
	fprintf(out, "name:         %s\n", name[0] ? name : "(unnamed)");
	fprintf(out, "region size:  %" PRIu64 " bytes\n", h.region_size);
	fprintf(out, "format id:    %016" PRIx64 "\n", h.format_id);
	for (unsigned int i = 0; i < n; i++)
		used += 1;
	fprintf(out, "sections:     %u of %u slots used\n", used, h.dir_capacity);
	for (unsigned int i = 0, k = 0; i < h.dir_capacity; i++) {
		if (bad[i]) {
			struct ivshmem_section s;
			const char *why = NULL;

			decode_entry(&h, raw, i, &s, &why);
			sanitize(name, s.name, sizeof(name));
			fprintf(out, "  [%2u] CORRUPT entry '%s': %s\n", i, name, whys[i]);
			continue;
		}
		if (k < n && secs[k].slot == i) {
			sanitize(name, secs[k].name, sizeof(name));
			fprintf(out, "  [%2u] %-8s %-31s offset 0x%" PRIx64 " size %" PRIu64 "\n", i,
				type_name(secs[k].type), name, secs[k].offset, secs[k].size);
			k++;
		}
	}
	return 1;
}

static uint64_t random64(void)
{
	uint64_t v = 0;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	struct timespec ts;

	if (fd >= 0) {
		if (read(fd, &v, sizeof(v)) != sizeof(v))
			v = 0;
		close(fd);
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	v ^= (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid() << 32 ^
	     (uint64_t)ts.tv_sec;
	return v;
}

int ivshmem_layout_format(struct ivshmem_region *r, const char *name)
{
	uint8_t raw[IVSHMEM_LAYOUT_HEADER_SIZE];
	uint64_t size = ivshmem_size(r);
	int ret;

	if (!name)
		name = "";
	if (strlen(name) >= IVSHMEM_LAYOUT_NAME_LEN)
		return ivshmem_fail(ENAMETOOLONG, "region name '%s' is longer than %u bytes", name,
				    IVSHMEM_LAYOUT_NAME_LEN - 1);
	if (name[0] && !valid_name(name, IVSHMEM_LAYOUT_NAME_LEN))
		return ivshmem_fail(EINVAL, "region name has control characters");
	if (size < 2 * IVSHMEM_LAYOUT_HEADER_SIZE)
		return ivshmem_fail(ENOSPC, "region of %" PRIu64 " bytes is too small for a layout "
				    "(at least 8192)", size);
	memset(raw, 0, sizeof(raw));
	ivshmem_put_le32(raw + IVSHMEM_H_VERSION, IVSHMEM_LAYOUT_VERSION);
	ivshmem_put_le32(raw + IVSHMEM_H_HEADER_SIZE, IVSHMEM_LAYOUT_HEADER_SIZE);
	ivshmem_put_le64(raw + IVSHMEM_H_REGION_SIZE, size);
	ivshmem_put_le32(raw + IVSHMEM_H_DIR_OFFSET, IVSHMEM_LAYOUT_DIR_OFFSET);
	ivshmem_put_le32(raw + IVSHMEM_H_DIR_ENTRY_SIZE, IVSHMEM_LAYOUT_DIR_ENTRY_SIZE);
	ivshmem_put_le32(raw + IVSHMEM_H_DIR_CAPACITY, IVSHMEM_LAYOUT_DIR_MAX);
	ivshmem_put_le64(raw + IVSHMEM_H_DATA_OFFSET, IVSHMEM_LAYOUT_HEADER_SIZE);
	ivshmem_put_le64(raw + IVSHMEM_H_FORMAT_ID, random64());
	memcpy(raw + IVSHMEM_LAYOUT_NAME_OFFSET, name, strlen(name));
	/* Everything but the magic first, so a reader never sees a half-written header as valid. */
	ret = ivshmem_write(r, 8, raw + 8, sizeof(raw) - 8);
	if (ret < 0)
		return ret;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	memcpy(raw, IVSHMEM_LAYOUT_MAGIC, 8);
	return ivshmem_write(r, 0, raw, 8);
}

int ivshmem_layout_list(const struct ivshmem_region *r, struct ivshmem_section *out, size_t max)
{
	uint8_t raw[IVSHMEM_LAYOUT_HEADER_SIZE];
	struct ivshmem_section secs[IVSHMEM_LAYOUT_DIR_MAX];
	const char *whys[IVSHMEM_LAYOUT_DIR_MAX];
	int bad[IVSHMEM_LAYOUT_DIR_MAX];
	struct ivshmem_layout_header h;
	unsigned int n;
	int ret = read_header(r, &h, raw);

	if (ret == 0)
		return ivshmem_fail(ENODATA, "the region has no layout (run 'ivshmem format')");
	if (ret < 0)
		return ret;
	n = decode_dir(&h, raw, secs, bad, whys);
	for (unsigned int i = 0; i < n && i < max; i++)
		out[i] = secs[i];
	return (int)n;
}

int ivshmem_layout_find(const struct ivshmem_region *r, const char *name,
			struct ivshmem_section *out)
{
	struct ivshmem_section secs[IVSHMEM_LAYOUT_DIR_MAX];
	int n = ivshmem_layout_list(r, secs, IVSHMEM_LAYOUT_DIR_MAX);

	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		if (strcmp(secs[i].name, name) == 0) {
			*out = secs[i];
			return 0;
		}
	}
	return ivshmem_fail(ENOENT, "no section named '%s' in the region", name);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int ivshmem_layout_lock(struct ivshmem_region *r, uint32_t *token)
{
	uint32_t *lock;
	uint32_t mine, seen = 0;
	int64_t start = now_ns(), seen_since = start;
	char name[1];
	int ret;

	if (ivshmem_is_device_memory(r))
		return ivshmem_fail(ENOTSUP, "changing the layout needs atomic operations, which "
				    "uncached mappings (sysfs, vfio, /dev/mem) do not support; "
				    "use the ivshmem.ko driver backend or 'ivshmem format' sections");
	ret = ivshmem_layout_name(r, name, sizeof(name));
	if (ret == 0)
		return ivshmem_fail(ENODATA, "the region has no layout (run 'ivshmem format')");
	if (ret < 0)
		return ret;
	lock = (uint32_t *)((char *)ivshmem_base(r) + IVSHMEM_LAYOUT_LOCK_OFFSET);
	do
		mine = (uint32_t)random64();
	while (mine == 0);
	for (;;) {
		uint32_t cur = 0;

		if (__atomic_compare_exchange_n(lock, &cur, mine, false, __ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED))
			break;
		if (cur != seen) {
			seen = cur;
			seen_since = now_ns();
		} else if (now_ns() - seen_since > LOCK_STALE_NS) {
			/* The same holder for 2 s: presumed dead, take it over. */
			if (__atomic_compare_exchange_n(lock, &cur, mine, false, __ATOMIC_ACQUIRE,
							__ATOMIC_RELAXED))
				break;
		}
		if (now_ns() - start > LOCK_GIVEUP_NS)
			return ivshmem_fail(EBUSY, "the layout lock stayed busy for 10 s");
		sched_yield();
	}
	*token = mine;
	return 0;
}

void ivshmem_layout_unlock(struct ivshmem_region *r, uint32_t token)
{
	uint32_t *lock = (uint32_t *)((char *)ivshmem_base(r) + IVSHMEM_LAYOUT_LOCK_OFFSET);

	/* Only release our own hold: a taken-over lock belongs to someone else now. */
	__atomic_compare_exchange_n(lock, &token, 0, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}

int ivshmem_layout_add_locked(struct ivshmem_region *r, const char *name, uint32_t type,
			      uint64_t size, int (*init)(struct ivshmem_region *r,
							 const struct ivshmem_section *s, void *arg),
			      void *arg, struct ivshmem_section *out)
{
	uint8_t raw[IVSHMEM_LAYOUT_HEADER_SIZE];
	struct ivshmem_section secs[IVSHMEM_LAYOUT_DIR_MAX], s;
	const char *whys[IVSHMEM_LAYOUT_DIR_MAX];
	int bad[IVSHMEM_LAYOUT_DIR_MAX];
	struct ivshmem_layout_header h;
	unsigned int n, slot;
	uint64_t at;
	uint8_t *e;
	int ret;

	if (!valid_name(name, IVSHMEM_SECTION_NAME_LEN))
		return ivshmem_fail(EINVAL, "section name '%s': 1 to %u printable bytes", name,
				    IVSHMEM_SECTION_NAME_LEN - 1);
	if (type != IVSHMEM_SECTION_CHANNEL && type != IVSHMEM_SECTION_RAW)
		return ivshmem_fail(EINVAL, "unknown section type %" PRIu32, type);
	if (size == 0 || size > UINT64_MAX / 2)
		return ivshmem_fail(EINVAL, "bad section size %" PRIu64, size);
	size = (size + IVSHMEM_SECTION_ALIGN - 1) & ~(uint64_t)(IVSHMEM_SECTION_ALIGN - 1);
	ret = read_header(r, &h, raw);
	if (ret == 0)
		return ivshmem_fail(ENODATA, "the region has no layout (run 'ivshmem format')");
	if (ret < 0)
		return ret;
	n = decode_dir(&h, raw, secs, bad, whys);
	for (unsigned int i = 0; i < n; i++) {
		if (strcmp(secs[i].name, name) == 0) {
			*out = secs[i];
			return ivshmem_fail(EEXIST, "section '%s' exists", name);
		}
	}
	/* A free slot (corrupt ones are left alone so they can be inspected). */
	for (slot = 0; slot < h.dir_capacity; slot++) {
		const uint8_t *p = raw + IVSHMEM_LAYOUT_DIR_OFFSET +
				   slot * IVSHMEM_LAYOUT_DIR_ENTRY_SIZE;

		if (!bad[slot] && ivshmem_get_le32(p + IVSHMEM_E_TYPE) == IVSHMEM_SECTION_FREE)
			break;
	}
	if (slot == h.dir_capacity)
		return ivshmem_fail(ENOSPC, "the layout directory is full (%u sections)",
				    h.dir_capacity);
	/* Lowest fitting offset: try the data start and the end of every section. */
	at = UINT64_MAX;
	for (unsigned int i = 0; i <= n; i++) {
		uint64_t cand = i == n ? IVSHMEM_LAYOUT_HEADER_SIZE : secs[i].offset + secs[i].size;
		struct ivshmem_section t = { .offset = cand, .size = size };
		bool fits = cand <= h.region_size && size <= h.region_size - cand;

		for (unsigned int j = 0; fits && j < n; j++)
			if (overlaps(&t, &secs[j]))
				fits = false;
		if (fits && cand < at)
			at = cand;
	}
	if (at == UINT64_MAX)
		return ivshmem_fail(ENOSPC, "no room for %" PRIu64 " more bytes in the region "
				    "(%" PRIu64 " bytes, %u sections)", size, h.region_size, n);
	memset(&s, 0, sizeof(s));
	strcpy(s.name, name);
	s.type = type;
	s.offset = at;
	s.size = size;
	s.slot = slot;
	if (init) {
		ret = init(r, &s, arg);
		if (ret < 0)
			return ret;
	}
	/* Fill the entry, then publish it by its type (release). */
	e = (uint8_t *)ivshmem_base(r) + IVSHMEM_LAYOUT_DIR_OFFSET +
	    slot * IVSHMEM_LAYOUT_DIR_ENTRY_SIZE;
	memset(raw, 0, IVSHMEM_LAYOUT_DIR_ENTRY_SIZE);
	memcpy(raw + IVSHMEM_E_NAME, s.name, IVSHMEM_SECTION_NAME_LEN);
	ivshmem_put_le64(raw + IVSHMEM_E_OFFSET, s.offset);
	ivshmem_put_le64(raw + IVSHMEM_E_SIZE, s.size);
	memcpy(e, raw, IVSHMEM_E_TYPE);
	memcpy(e + IVSHMEM_E_FLAGS, raw + IVSHMEM_E_FLAGS,
	       IVSHMEM_LAYOUT_DIR_ENTRY_SIZE - IVSHMEM_E_FLAGS);
	__atomic_store_n((uint32_t *)(e + IVSHMEM_E_TYPE), htole32(type), __ATOMIC_RELEASE);
	*out = s;
	return 0;
}

int ivshmem_layout_add(struct ivshmem_region *r, const char *name, uint32_t type, uint64_t size,
		       struct ivshmem_section *out)
{
	uint32_t token;
	int ret = ivshmem_layout_lock(r, &token);

	if (ret < 0)
		return ret;
	ret = ivshmem_layout_add_locked(r, name, type, size, NULL, NULL, out);
	ivshmem_layout_unlock(r, token);
	return ret;
}
