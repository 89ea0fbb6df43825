/*
 * stop_signals.h - SIGINT and SIGTERM for commands that stop cleanly.
 *
 * The commands block both signals in the main thread before they start
 * any thread (nng's, the scoring thread inherit the mask) and take them
 * with sigwait or sigtimedwait, so stopping runs as ordinary code. But
 * libraries may start threads before main() does anything: OpenBLAS
 * starts its pool from a constructor, with no signal blocked. A
 * process-directed signal the main thread blocks goes to such a thread,
 * whose default action ends the process with no clean stop. So a handler
 * is installed too: it runs only on a thread other than the main one and
 * sends the signal on to the main thread, where it waits, blocked, for
 * the command's sigwait.
 */
#ifndef PRESHIFT_STOP_SIGNALS_H
#define PRESHIFT_STOP_SIGNALS_H

#include <signal.h>

/*
 * Fill *set with SIGINT and SIGTERM, block them in the calling thread
 * (the main thread; *old gets the previous mask), install the forwarding
 * handler, and ignore SIGPIPE (a peer that goes away mid-write must not
 * kill the process). 0, or -1 if a call failed (errno says which).
 */
int ps_stop_signals_block(sigset_t *set, sigset_t *old);

#endif
