/*
 * each_backend.h - run a check on every backend this build and machine
 * have: the CPU with each instruction set it can run, one and two threads,
 * then CUDA where a device answers. What is skipped is said on stdout.
 */
#ifndef PRESHIFT_EACH_BACKEND_H
#define PRESHIFT_EACH_BACKEND_H

#include "kernels/kernels.h"

void each_backend(void (*check)(ps_backend *be, void *ctx), void *ctx);

#endif
