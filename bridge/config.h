/* SPDX-License-Identifier: MIT */
/*
 * The bridge's configuration (docs/multihost.md "Configuration"): lines
 * "keyword value..." from a file or from flags (every flag is turned into
 * one such line, so both follow one rule). Pure parsing, no I/O except
 * reading the file.
 */
#ifndef BRIDGE_CONFIG_H
#define BRIDGE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "frame.h"

#define CFG_MAX_PEERS		16
#define CFG_MAX_CHANNELS	64
#define CFG_ADDR_LEN		128
#define CFG_PATH_LEN		512

#define CFG_DEFAULT_KEEPALIVE_MS 1000u
#define CFG_DEFAULT_DEAD_MS	3000u
#define CFG_DEFAULT_MAX_RECORD	(1u << 20)
#define CFG_DEFAULT_WINDOW	(1u << 20)
#define CFG_DEFAULT_RING	(64u << 10)
#define CFG_MAX_WINDOW		(256u << 20)
#define CFG_MAX_RECORD_LIMIT	(64u << 20)

struct cfg_peer {
	char name[FRAME_NAME_LEN];
	bool dial;			/* we connect; else it connects to us */
	char addr[CFG_ADDR_LEN];	/* dial: ADDR:PORT */
};

struct cfg_channel {
	char name[FRAME_NAME_LEN];
	char peer_name[FRAME_NAME_LEN];
	int peer;			/* index in peers[], set by config_finish() */
	uint64_t ring, window;
};

struct bridge_config {
	char name[FRAME_NAME_LEN];
	char region[CFG_PATH_LEN];
	char secret_file[CFG_PATH_LEN];
	char listen[CFG_ADDR_LEN];
	struct cfg_peer peers[CFG_MAX_PEERS];
	int npeers;
	struct cfg_channel channels[CFG_MAX_CHANNELS];
	int nchannels;
	uint32_t keepalive_ms, dead_ms, max_record;
};

void config_init(struct bridge_config *c);
/* Apply one line ("channel ctl hostB ring 4M"); comments and blank lines are fine. 0 or -1 + @err. */
int config_line(struct bridge_config *c, const char *line, char *err, size_t errlen);
/* Apply every line of @path; @err starts with "PATH:LINE: ". */
int config_file(struct bridge_config *c, const char *path, char *err, size_t errlen);
/* Check what must be there and resolve channel peers. 0 or -1 + @err. */
int config_finish(struct bridge_config *c, char *err, size_t errlen);
/* Numeric "A.B.C.D:PORT" or "[V6]:PORT" into a socket address. 0 or -1 + @err. */
int config_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len, char *err,
		size_t errlen);
/* The effective configuration as config lines (what --check prints). */
void config_print(const struct bridge_config *c, FILE *out);

#endif
