/* cuda_loader.c — amtl_backend_cuda_new: the CUDA backend (kernels/cuda/,
 * cuBLAS and the CUDA runtime) is a module of its own, amtl-cuda.so, loaded
 * on the first call.  Linked into every tool, the CUDA libraries cost some
 * 200 MB of resident memory at start-up (their relocations and kernel
 * registrations), on every run, GPU or not; loaded here they cost it only
 * to a process that asks for the GPU.
 *
 * The module is looked for, in order, at $AMTL_CUDA_MODULE, at
 * <the executable's directory>/../lib/amtl/amtl-cuda.so (make install's
 * layout), and where the build put it (AMTL_CUDA_MODULE_BUILT, the build
 * tree).  A build without nvcc has none.
 */
#include "backend.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MODULE_ENTRY "amtl_cuda_module_backend_new"

typedef amtl_backend *(*module_new_fn)(const char **why);

/* dlopen of path: the handle, or NULL with the loader's message in err */
static void *open_module(const char *path, char *err, size_t cap)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(err, cap, "%.400s", e ? e : path);
    }
    return h;
}

amtl_backend *amtl_backend_cuda_new(const char **why)
{
    /* per thread, as the module's own reasons are: the text outlives the call */
    static _Thread_local char msg[768];
    char err[512] = "", path[PATH_MAX + 32];
    void *h = NULL;
    const char *env = getenv("AMTL_CUDA_MODULE");
    if (env && env[0]) {
        h = open_module(env, err, sizeof err);
    } else {
        ssize_t n = readlink("/proc/self/exe", path, PATH_MAX);
        if (n > 0) {
            path[n] = '\0';
            char *slash = strrchr(path, '/');
            if (slash) {
                snprintf(slash, sizeof path - (size_t)(slash - path), "/../lib/amtl/amtl-cuda.so");
                if (access(path, F_OK) == 0)
                    h = open_module(path, err, sizeof err);
            }
        }
#ifdef AMTL_CUDA_MODULE_BUILT
        if (!h && !err[0])
            h = open_module(AMTL_CUDA_MODULE_BUILT, err, sizeof err);
#endif
    }
    if (!h) {
        if (why) {
            if (err[0])
                snprintf(msg, sizeof msg, "the CUDA module cannot be loaded: %s", err);
            else
                snprintf(msg, sizeof msg, "this build has no CUDA backend (nvcc was not "
                                          "found when it was built)");
            *why = msg;
        }
        return NULL;
    }
    module_new_fn fn;
    void *sym = dlsym(h, MODULE_ENTRY);
    memcpy(&fn, &sym, sizeof fn); /* an object pointer to a function pointer, as POSIX allows */
    if (!fn) {
        if (why) {
            snprintf(msg, sizeof msg, "the CUDA module has no %s: not a module of this build",
                     MODULE_ENTRY);
            *why = msg;
        }
        dlclose(h);
        return NULL;
    }
    /* the module stays loaded: its instances' functions live in it */
    return fn(why);
}
