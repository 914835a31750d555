/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A send-only channel endpoint (docs/channel.md) in the host kernel, with the
 * producer half of ring format 2 (docs/ring.md). Not thread-safe: the caller
 * serialises every call (ivshmem_hoststat.ko holds its mutex).
 */
#ifndef _HOSTSTAT_CHANNEL_H
#define _HOSTSTAT_CHANNEL_H

#include <linux/types.h>

struct ivshmem_host_region;

enum hs_chan_state {
	HS_CHAN_CLOSED,		/* no slot of ours */
	HS_CHAN_WAITING,	/* open, the other slot is free */
	HS_CHAN_CONNECTED,
	HS_CHAN_PEER_CLOSED,
	HS_CHAN_PEER_DEAD,
	HS_CHAN_BROKEN,
};

struct hs_channel {
	struct ivshmem_host_region *region;	/* for ringing the reader */
	u8 *base;			/* the region's kernel mapping */
	u8 *sec;			/* the channel section in it */
	u64 cap;			/* ring_cap, validated once */
	u32 own_id;
	unsigned int hb_ms;		/* our heartbeat period, advertised */
	unsigned int dead_ms;		/* silence that makes the reader dead */
	enum hs_chan_state state;
	int me;				/* own slot while open */
	u64 token;
	u64 heartbeat;
	/* producer ring: the private index and cached consumer index */
	u8 *ctrl, *data;
	u64 local, remote;
	/* the other end, a snapshot taken when it was first seen OPEN */
	bool remote_seen;
	u32 remote_peer, remote_vector, remote_flags, remote_hb_ms;
	u64 remote_token, remote_hb;
	u64 remote_hb_change_ns, last_check_ns;
	/* opening: heartbeats seen across tries, the layout lock's holder */
	u64 seen_hb[2], seen_since_ns[2];
	u32 lock_seen;
	u64 lock_since_ns;
	const char *why;		/* the last reason for not opening / closing */
	unsigned long kicks, kick_errors;
};

/*
 * hs_channel_init() - validate the section at @offset (@size bytes) of the
 * region at @base once: magic, version 2, ring_cap. 0 or -EBADMSG/-EPROTO.
 */
int hs_channel_init(struct hs_channel *ch, struct ivshmem_host_region *region, void *base,
		    u64 offset, u64 size, u32 own_id, unsigned int hb_ms);
/* Bytes of the largest record the channel's rings take. */
size_t hs_channel_max_record(const struct hs_channel *ch);
/* One try to open (never waits): 0 open, -EAGAIN try again later, -EBADMSG. */
int hs_channel_try_open(struct hs_channel *ch);
/* Heartbeat and the other end's liveness; the new state. */
enum hs_chan_state hs_channel_tick(struct hs_channel *ch);
/* 0, -EAGAIN (ring full: dropped), -ENOTCONN, -EMSGSIZE, -EBADMSG (broken). */
int hs_channel_send(struct hs_channel *ch, const void *buf, size_t len);
/* Store CLOSED after everything published and wake a sleeping reader. */
void hs_channel_close(struct hs_channel *ch);

#endif /* _HOSTSTAT_CHANNEL_H */
