/*
 * relay_client.h - the server side of the relay protocol, as the example
 * servers use it.  The C counterpart of the original's clientutils
 * package (ProcessMessages).
 *
 * How a server behind NAT is reached through relayd:
 *
 *   1. The server opens one TCP connection to the relay's control port
 *      and keeps it open.  It sends nothing.
 *   2. When a client connects to the relay's public port, the relay
 *      writes "[NEW]<port>\n" on that control connection.
 *   3. The server opens a new connection to <relay host>:<port>.  The
 *      relay pairs it with the waiting client and copies bytes both ways.
 *
 * The examples keep their actual server (echo, HTTP) unaware of all this:
 * for every [NEW] the relay client dials the example's own local listener
 * too and copies bytes between the two connections, as the original
 * helper did.
 */
#ifndef EXAMPLES_RELAY_CLIENT_H
#define EXAMPLES_RELAY_CLIENT_H

#include <sys/socket.h>

#include <ev.h>

#include "proto.h"
#include "pump.h"

#define RELAY_HOST_MAX 256

struct relay_client {
	struct ev_loop *loop;
	char host[RELAY_HOST_MAX];     /* the relay, as given by -host */
	struct sockaddr_storage local; /* the example's own listener */
	socklen_t locallen;
	int ctl; /* the control connection */
	ev_io ctl_io;
	char buf[PROTO_LINE_MAX]; /* a partly received line */
	size_t len;
	struct pipe_pool pool; /* pipes for the byte pumps */
};

/*
 * relay_client_flags: parse "-host H" and "-port N" (also "-host=H",
 * "--host H"), the original examples' flags, into <host> and <port>.
 * Prints usage and exits on -h or a bad flag.
 */
void relay_client_flags(int argc, char **argv, char *host, size_t hostlen,
    unsigned *port);

/*
 * relay_client_start: connect to the relay at <host>:<port> and serve its
 * [NEW] lines on <loop> by bridging each to the listener <local_fd>.
 * Returns 0, or -1 after printing why.  When the control connection ends
 * the client breaks <loop>: the example then exits, so that whatever
 * supervises it can start it again.  (The original kept running with no
 * way to be reached.)
 */
int relay_client_start(struct relay_client *rc, struct ev_loop *loop,
    const char *host, unsigned port, int local_fd);

/*
 * relay_client_main: the whole main() of an example server.  Parse the
 * flags, listen on an ephemeral loopback port (only the relay client
 * connects there), print "Listening on: ADDR", register with the relay,
 * and run the loop with <accept_cb> watching the listener.  Returns the
 * exit status: the loop only ends when the control connection does.
 */
int relay_client_main(int argc, char **argv,
    void (*accept_cb)(struct ev_loop *, ev_io *, int));

#endif
