/*
 * accept_fault.c - LD_PRELOAD into relayd: while the file named by
 * $ACCEPT_FAULT_FILE exists, accept4(2) fails with the errno written in
 * it (a number; ENOBUFS if it holds none), as if the system had run out
 * of buffers or of file descriptors.  Lets a test reach relayd's
 * resource-exhaustion paths without exhausting the machine.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

__attribute__((visibility("default"))) int accept4(int fd, struct sockaddr *sa,
    socklen_t *len, int flags);

static int
accept_fault_errno(void)
{
	const char *path = getenv("ACCEPT_FAULT_FILE");
	char buf[16] = "";
	ssize_t n;
	int f, e;

	if (path == NULL || (f = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	n = read(f, buf, sizeof(buf) - 1);
	close(f);
	e = n > 0 ? atoi(buf) : 0;
	return e > 0 ? e : ENOBUFS;
}

int
accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
	int (*real)(int, struct sockaddr *, socklen_t *, int) = (int (*)(int,
	    struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
	int e = accept_fault_errno();

	if (e != 0) {
		errno = e;
		return -1;
	}
	return real(fd, sa, len, flags);
}
