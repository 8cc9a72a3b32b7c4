/*
 * stats.h - the optional metrics endpoint (-stats ADDR).
 *
 * It answers on a TCP address or a UNIX socket path, on the main thread.
 * An HTTP GET gets Prometheus text exposition; any other line (such as
 * the "stats" that relayctl sends) gets the same text without headers.
 */
#ifndef RELAYD_STATS_H
#define RELAYD_STATS_H

#include <ev.h>

struct reg;

int stats_check(const char *addr);
int stats_listen(const char *addr);
void stats_start(struct ev_loop *loop);
void stats_stop(struct ev_loop *loop);

/* The registry of live registrations the endpoint lists. */
void stats_reg_add(struct reg *reg);
void stats_reg_remove(struct reg *reg);
void stats_reg_update(struct reg *reg);

#endif
