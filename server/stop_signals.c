#include "stop_signals.h"

#include <pthread.h>

static pthread_t main_thread;

static void forward(int sig)
{
    /* On the main thread itself (after it restored its mask) the signal
     * has nothing left to stop: it is already stopping. */
    if (!pthread_equal(pthread_self(), main_thread)) pthread_kill(main_thread, sig);
}

int ps_stop_signals_block(sigset_t *set, sigset_t *old)
{
    main_thread = pthread_self();
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, set, old)) return -1;
    struct sigaction sa = {0};
    sa.sa_handler = forward;
    sigfillset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    struct sigaction ign = {0};
    ign.sa_handler = SIG_IGN;
    if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL) ||
        sigaction(SIGPIPE, &ign, NULL))
        return -1;
    return 0;
}
