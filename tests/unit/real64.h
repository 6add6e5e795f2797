/* real64.h — forced into every source of the float64 evaluation build
 * (Makefile: $(BUILD)/real64/, -include tests/unit/real64.h): `float` is
 * `double` there, the float functions of math.h their double versions and
 * sgemm dgemm, so the library compiles into the same network, the same
 * step and the same plain CPU backend, computed in float64.  What
 * test_real64.c compares every backend against: not a second copy of the
 * model's arithmetic, the one copy in another precision.  The system
 * headers the sources use are included first, as they are. */
#ifndef AMTL_REAL64_H
#define AMTL_REAL64_H

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cblas.h>
#undef I
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define float double
#define expf exp
#define logf log
#define log1pf log1p
#define sqrtf sqrt
#define fabsf fabs
#define powf pow
#define tanhf tanh
#define fmaxf fmax
#define fminf fmin
#define floorf floor
#define ceilf ceil
#define __builtin_sqrtf __builtin_sqrt
#define cblas_sgemm cblas_dgemm

#endif
