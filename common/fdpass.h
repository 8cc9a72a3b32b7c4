/*
 * fdpass.h - one message with at most one file descriptor over a UNIX
 * socket (SCM_RIGHTS), never blocking.  Shared by librelayshim.so and its
 * helper, which hand relay connections to each other this way (wake.h).
 */
#ifndef COMMON_FDPASS_H
#define COMMON_FDPASS_H

#include <stddef.h>
#include <sys/types.h>

/* fdpass_send: <len> bytes of <buf>, carrying <fd> unless it is -1.
 * 0, or -1 with errno (EAGAIN: the peer's queue is full). */
int fdpass_send(int sock, const void *buf, size_t len, int fd);
/* fdpass_recv: one message of at most <len> bytes into <buf>, and the fd
 * it carries (close-on-exec if <cloexec>) into *fdp, or -1.  Returns the
 * message's length, or -1 with errno (EAGAIN: nothing queued). */
ssize_t fdpass_recv(int sock, void *buf, size_t len, int *fdp, int cloexec);

#endif
