/*
 * helper.h - the two modes of the relayshim binary.
 */
#ifndef SHIM_HELPER_H
#define SHIM_HELPER_H

/* wake.c: started by librelayshim.so with its channel on <ctl_fd>. */
int wake_main(int ctl_fd);
/* standalone.c: "relayshim -relay H:P -to H:P", a forwarder. */
int standalone_main(int argc, char **argv);

#endif
