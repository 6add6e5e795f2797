/* stall_fsync.c — an LD_PRELOAD library for the Bats tests: a disk that
 * hangs on the Nth fsync (N from AMTL_STALL_FSYNC, default 1) and never
 * returns.  A writer is then held between writing its temp file and renaming
 * it, so a test can kill it there on purpose rather than by luck of timing.
 * Built by the tests that use it: cc -shared -fPIC -o stall_fsync.so.
 */
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int fsync(int fd);

int fsync(int fd)
{
    static int calls;
    const char *n = getenv("AMTL_STALL_FSYNC");
    if (++calls >= (n ? atoi(n) : 1))
        for (;;)
            pause();
    return (int)syscall(SYS_fsync, fd);
}
