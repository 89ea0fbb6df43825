/*
 * vecmath_cpu.c - which vecmath tables this CPU can run.
 *
 * Kept apart from the tables so that it is compiled without -mavx2: code
 * that decides whether AVX2 may run must not itself contain AVX2. The
 * compiler's cpu-supports builtins read CPUID and also check (XGETBV) that
 * the OS saves the wider registers, which is what "can run" means.
 *
 * A table needs every extension its file is compiled with, since the
 * compiler is free to use any of them, not just those the intrinsics name.
 */
#include "vecmath.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define PS_VM_X86 1
#else
#define PS_VM_X86 0
#endif

int ps_vecmath_cpu_has_avx2(void)
{
#if PS_VM_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

int ps_vecmath_cpu_has_avx512(void)
{
#if PS_VM_X86
    __builtin_cpu_init();
    return ps_vecmath_cpu_has_avx2() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw");
#else
    return 0;
#endif
}
