/*
 * helper.c - main() of relayshim: the helper process of librelayshim.so
 * ("-shim-fd 3", started by the shim) or a standalone forwarder.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helper.h"

/*
 * Started from inside a server: keep nothing of it but stderr (where the
 * server's own messages go).  Its listening socket in particular must
 * not stay open here, or the helper would keep it alive forever.
 */
static void
helper_detach(int keep)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	struct stat st;

	/* Fds 0-2 must all be taken: a server whose stdio is close-on-exec
	 * (node's is) leaves gaps, and the next socket opened here would
	 * land on fd 2 and get our log lines. */
	if (null != -1) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		/* A pipe on stderr is someone reading to EOF ("out=$(nginx)",
		 * "| tee"): holding it open would hang them once a server
		 * daemonized.  A terminal, a file or journald's socket keep
		 * the helper's messages. */
		if (fcntl(STDERR_FILENO, F_GETFD) == -1 ||
		    (fstat(STDERR_FILENO, &st) == 0 && S_ISFIFO(st.st_mode)))
			dup2(null, STDERR_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
	for (int fd = 3; fd < keep; fd++)
		close(fd);
	/* Before Linux 5.9, or under a seccomp filter that refuses it:
	 * every number up to the limit (a kept listener of the server's
	 * would keep this helper alive after the server is gone). */
	if (close_range((unsigned)keep + 1, ~0U, 0) == -1) {
		long max = sysconf(_SC_OPEN_MAX);

		for (long fd = keep + 1; fd < (max > 0 ? max : 65536); fd++)
			close((int)fd);
	}
}

int
main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 3 && strcmp(argv[1], "-shim-fd") == 0 &&
	    strcmp(argv[2], "3") == 0) {
		helper_detach(3);
		return wake_main(3);
	}
	return standalone_main(argc, argv);
}
