/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What ivshmem_hoststat.ko (host) and ivshmem_hoststat_guest.ko (guest) share:
 * the record and request-area formats (docs/host-kernel.md, "Example
 * module") and a finder for a section of the region's layout
 * (docs/layout.md). Every offset here is from the start of its block; every
 * field is little-endian.
 */
#ifndef _HOSTSTAT_PROTO_H
#define _HOSTSTAT_PROTO_H

#include <linux/errno.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/types.h>
#include <asm/byteorder.h>

/* ---- the record (one channel record), version 1 ---- */
#define HS_REC_MAGIC		"HSTA"
#define HS_REC_VERSION		1
#define HS_REC_HDR_SIZE		96
#define HS_VCPU_SIZE		32
#define HS_MAX_VCPUS		64
#define HS_REC_MAX_SIZE		(HS_REC_HDR_SIZE + HS_MAX_VCPUS * HS_VCPU_SIZE)

enum hs_reason { HS_REASON_PERIODIC = 1, HS_REASON_REQUEST = 2 };

/* ---- the request area (raw section), version 1 ---- */
#define HS_REQ_VERSION		1
#define HS_REQ_SIZE		256	/* bytes of the section used */
#define HS_REQ_GUEST		128	/* the requester's block */
#define HS_NO_REPLY		0xffffffffu

enum {	/* host block, written by the module only */
	HS_H_STATE = 0, HS_H_VERSION = 4, HS_H_PEER = 8, HS_H_VECTOR = 12, HS_H_INSTANCE = 16,
	HS_H_ANSWERED = 24, HS_H_STATUS = 32, HS_H_VALUE = 40, HS_H_RECORD_SEQ = 48,
};

enum {	/* guest block, at HS_REQ_GUEST, written by the requester only */
	HS_G_SEQ = 0, HS_G_COMMAND = 8, HS_G_FIGURE = 12, HS_G_REPLY_PEER = 16,
	HS_G_REPLY_VECTOR = 20,
};

enum hs_command { HS_CMD_PUBLISH = 1, HS_CMD_GET = 2 };

enum hs_figure {
	HS_FIG_MEM_TOTAL_KB = 1, HS_FIG_MEM_FREE_KB = 2, HS_FIG_MEM_AVAILABLE_KB = 3,
	HS_FIG_LOAD1 = 4, HS_FIG_RUN_DELAY = 0x100,	/* + vCPU entry index */
};

/* ---- shared-memory accessors: one load or store each ---- */
static inline u32 hs_ld32(const u8 *p)
{
	return le32_to_cpu(READ_ONCE(*(const __le32 *)p));
}

static inline u64 hs_ld64(const u8 *p)
{
	return le64_to_cpu(READ_ONCE(*(const __le64 *)p));
}

static inline u32 hs_acq32(const u8 *p)
{
	/* Acquire: what the writer stored before its release is visible after this load. */
	return le32_to_cpu(smp_load_acquire((const __le32 *)p));
}

static inline u64 hs_acq64(const u8 *p)
{
	/* Acquire, as hs_acq32(). */
	return le64_to_cpu(smp_load_acquire((const __le64 *)p));
}

static inline void hs_st32(u8 *p, u32 v)
{
	WRITE_ONCE(*(__le32 *)p, cpu_to_le32(v));
}

static inline void hs_st64(u8 *p, u64 v)
{
	WRITE_ONCE(*(__le64 *)p, cpu_to_le64(v));
}

static inline void hs_rel32(u8 *p, u32 v)
{
	/* Release: every earlier load and store is ordered before this store. */
	smp_store_release((__le32 *)p, cpu_to_le32(v));
}

static inline void hs_rel64(u8 *p, u64 v)
{
	/* Release, as hs_rel32(). */
	smp_store_release((__le64 *)p, cpu_to_le64(v));
}

/* Fields of a private, aligned snapshot (every offset used is naturally aligned). */
static inline u32 hs_get32(const u8 *p)
{
	return le32_to_cpup((const __le32 *)p);
}

static inline u64 hs_get64(const u8 *p)
{
	return le64_to_cpup((const __le64 *)p);
}

/* ---- the layout (docs/layout.md), version 1 ---- */
#define HS_LAYOUT_MAGIC		"IVSHMLAY"
#define HS_LAYOUT_HDR		4096
#define HS_LAYOUT_DIR		256
#define HS_LAYOUT_ENTRY		64
#define HS_LAYOUT_MAX_DIR	60
#define HS_LAYOUT_LOCK		128	/* the layout lock word */
#define HS_SEC_NAME_LEN		32
#define HS_SEC_CHANNEL		1
#define HS_SEC_RAW		2

struct hs_section {
	u64 offset;
	u64 size;
	u32 type;
	char name[HS_SEC_NAME_LEN];
};

/* 1 to 31 printable bytes and a NUL, as the library requires. */
static inline bool hs_valid_name(const char *name, size_t max)
{
	size_t i, n = strnlen(name, max);

	if (n == 0 || n >= max)
		return false;
	for (i = 0; i < n; i++)
		if ((u8)name[i] < 0x20 || name[i] == 0x7f)
			return false;
	return true;
}

/* Entry @i of a header snapshot: 1 valid, 0 free, -EBADMSG invalid. */
static inline int hs_decode_entry(const u8 *raw, u64 region_size, unsigned int i,
				  struct hs_section *s)
{
	const u8 *e = raw + HS_LAYOUT_DIR + i * HS_LAYOUT_ENTRY;

	s->type = hs_get32(e + 32);
	if (!s->type)
		return 0;
	memcpy(s->name, e, HS_SEC_NAME_LEN);
	s->offset = hs_get64(e + 40);
	s->size = hs_get64(e + 48);
	if (!hs_valid_name(s->name, HS_SEC_NAME_LEN) ||
	    (s->type != HS_SEC_CHANNEL && s->type != HS_SEC_RAW) ||
	    s->offset < HS_LAYOUT_HDR || s->offset % HS_LAYOUT_HDR || !s->size ||
	    s->size % HS_LAYOUT_HDR || s->offset > region_size || s->size > region_size - s->offset)
		return -EBADMSG;
	return 1;
}

/*
 * hs_layout_find() - section @name of type @type in the region at @base
 * (@mapped bytes). The 4 KiB header is copied once and only the copy is
 * validated and read: a peer changing it meanwhile cannot make us read a
 * field twice. As in the library, an entry that overlaps an earlier valid
 * one or repeats its name is invalid. Returns 0, -ENODATA (no layout),
 * -EBADMSG (a corrupt header), -ENOENT (no such valid section), -EMEDIUMTYPE
 * (a section of another type), -ENOMEM; @why says which, for the log.
 */
static inline int hs_layout_find(const void *base, u64 mapped, const char *name, u32 type,
				 struct hs_section *out, const char **why)
{
	struct hs_section *secs;
	unsigned int i, j, n = 0, cap;
	u64 region_size;
	int ret = -ENOENT;
	u8 *raw;

	*why = "no valid section of that name";
	if (mapped < 2 * HS_LAYOUT_HDR) {
		*why = "region too small for a layout";
		return -ENODATA;
	}
	raw = kmalloc(HS_LAYOUT_HDR, GFP_KERNEL);
	secs = kcalloc(HS_LAYOUT_MAX_DIR, sizeof(*secs), GFP_KERNEL);
	if (!raw || !secs) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(raw, base, HS_LAYOUT_HDR);
	cap = hs_get32(raw + 32);
	region_size = hs_get64(raw + 16);
	if (memcmp(raw, HS_LAYOUT_MAGIC, 8)) {
		*why = "no layout header (run 'ivshmem format')";
		ret = -ENODATA;
		goto out;
	}
	if (hs_get32(raw + 8) != 1 || hs_get32(raw + 12) != HS_LAYOUT_HDR ||
	    hs_get32(raw + 24) != HS_LAYOUT_DIR ||
	    hs_get32(raw + 28) != HS_LAYOUT_ENTRY || cap > HS_LAYOUT_MAX_DIR ||
	    hs_get64(raw + 40) != HS_LAYOUT_HDR || region_size < 2 * HS_LAYOUT_HDR ||
	    region_size > mapped || !memchr(raw + 64, 0, 64)) {
		*why = "corrupt or unsupported layout header";
		ret = -EBADMSG;
		goto out;
	}
	for (i = 0; i < cap; i++) {
		struct hs_section s;
		bool ok = hs_decode_entry(raw, region_size, i, &s) > 0;

		for (j = 0; ok && j < n; j++)
			ok = (s.offset >= secs[j].offset + secs[j].size ||
			      secs[j].offset >= s.offset + s.size) && strcmp(s.name, secs[j].name);
		if (ok)
			secs[n++] = s;
	}
	for (i = 0; i < n; i++) {
		if (strcmp(secs[i].name, name))
			continue;
		*out = secs[i];
		ret = secs[i].type == type ? 0 : -EMEDIUMTYPE;
		*why = ret ? "the section has another type" : "";
		break;
	}
out:
	kfree(secs);
	kfree(raw);
	return ret;
}

#endif /* _HOSTSTAT_PROTO_H */
