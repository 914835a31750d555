/* SPDX-License-Identifier: MIT */
/*
 * The bridge daemon's state (docs/multihost.md): links to remote bridges
 * (struct conn, proto.c) and the carried channels (struct chan, session.c),
 * driven by one event loop (main.c). Single-threaded.
 */
#ifndef BRIDGE_BRIDGE_H
#define BRIDGE_BRIDGE_H

#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "config.h"
#include "frame.h"
#include "link.h"
#include "pending.h"

#include "ivshmem/channel.h"
#include "ivshmem/region.h"

#define MAX_CONNS		32
#define HANDSHAKE_MS		5000
#define TX_BATCH		(256u << 10)	/* frames batched into one UCX send; records forwarded per pass */
#define RX_BATCH		(256u << 10)	/* bytes of frames handled per link per pass */
#define REDIAL_MS		1000
#define REOPEN_MS		100

enum conn_state { CONN_HELLO, CONN_AUTH, CONN_UP };
enum end_kind { END_NONE, END_CLOSE = FRAME_CLOSE, END_RESET = FRAME_RESET };

struct conn {
	struct link *link;
	enum conn_state state;
	char role;			/* 'D' we dialled, 'A' we accepted */
	int peer;			/* index in the configuration; -1 until authenticated */
	uint8_t own_hello[FRAME_HELLO_LEN], peer_hello[FRAME_HELLO_LEN];
	uint32_t peer_max_payload;
	uint32_t next_id;		/* next channel id we announce (never reused on this link) */
	int64_t born, last_rx, last_tx;	/* monotonic ns */
	uint64_t rx_seen;		/* link->rx_total at last_rx */
	uint8_t *tx;			/* frames not yet handed to UCX */
	size_t tx_len, tx_cap;
	bool dead;			/* dropped: closed and reaped by the loop */
};

struct chan {
	const struct cfg_channel *cfg;
	struct ivshmem_channel *ch;	/* our local end, NULL while closed */
	bool left_records;		/* we closed with records unread: reopen with NO_LEFTOVERS */
	int64_t reopen_at;
	bool open_failed_logged;
	/* The session on the peer's current link. */
	uint32_t local_id;		/* what we announced (OPEN); 0: not announced */
	uint32_t remote_id;		/* the remote's session we forward to; 0: not paired */
	uint64_t credit;		/* bytes we may still send to remote_id */
	uint64_t credit_max;		/* its window: credit never comes back above it */
	uint32_t remote_max;		/* the largest record remote_id accepts */
	uint32_t our_max;		/* the largest record we announced */
	uint64_t rx_avail;		/* credit the remote still holds on local_id */
	uint64_t credit_owed;		/* delivered to the ring, not yet returned in CREDIT */
	struct pending pend;
	enum end_kind end_received;	/* the remote ended: finish once pending is delivered */
	uint32_t stash_id, stash_window, stash_max;	/* an OPEN that came between our sessions */
	uint64_t fwd_records, dlv_records;		/* forwarded, delivered (statistics) */
};

struct bridge {
	struct bridge_config cfg;
	uint8_t secret[SECRET_MAX];
	int secret_len;
	struct ivshmem_region *region;
	struct ucx ucx;
	struct conn *conns[MAX_CONNS];
	int nconns;
	struct conn *peer_conn[CFG_MAX_PEERS];	/* the authenticated link of each peer */
	int64_t redial_at[CFG_MAX_PEERS];
	struct chan chans[CFG_MAX_CHANNELS];
	int nchans;
	uint32_t max_payload;		/* what we accept in one frame (HELLO) */
	bool verbose;
	bool busy;			/* this pass moved something: do not sleep */
};

#define EXIT_USAGE		2	/* bad flags or configuration */

/* options.c: flags and the configuration; -1 to go on, or an exit status. */
int options_parse(struct bridge *b, int argc, char **argv, bool *check);

int64_t now_ns(void);
void log_msg(struct bridge *b, bool debug, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* proto.c: links */
struct conn *conn_new(struct bridge *b, struct link *l, char role, int peer);
void conn_service(struct bridge *b, struct conn *c);	/* read and dispatch frames, timers */
void conn_flush(struct bridge *b, struct conn *c);	/* hand batched frames to UCX, keepalive */
void conn_drop(struct bridge *b, struct conn *c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int64_t conn_deadline(struct bridge *b, struct conn *c);	/* next timer, ns */
/* Append a frame (payload @len bytes copied from @payload, may be NULL if @len is 0). */
void conn_frame(struct conn *c, enum frame_type type, uint32_t channel, const void *payload,
		uint32_t len);
/* Room for a DATA frame of up to @max bytes: returns where its payload goes. */
uint8_t *conn_data_begin(struct conn *c, uint32_t max);
void conn_data_end(struct conn *c, uint32_t channel, uint32_t len);
size_t conn_data_room(const struct conn *c);

/* session.c: channels */
void chan_init(struct bridge *b, struct chan *s, const struct cfg_channel *cfg);
void chan_service(struct bridge *b, struct chan *s);	/* move records both ways */
bool chan_wants_poll(const struct chan *s);		/* include its fd in poll() */
void chan_link_lost(struct bridge *b, struct chan *s, const char *why);
void chan_shutdown(struct bridge *b, struct chan *s);
/* Frames for a channel; -1 + @err is a protocol error (drop the link). */
int chan_on_open(struct bridge *b, struct conn *c, uint32_t id, const struct frame_open *o,
		 const char **err);
int chan_on_frame(struct bridge *b, struct conn *c, const struct frame_hdr *h,
		  const uint8_t *payload, const char **err);

#endif
