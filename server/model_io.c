/*
 * model_io.c - model files on disk.
 *
 * Plain POSIX calls rather than stdio: loading needs the size before reading
 * (to refuse a huge file without reading it and to allocate once), and
 * saving needs fsync on the file and on its directory, which stdio cannot
 * give. The temporary file is created with O_EXCL under a name of its own,
 * so two savers never write into one file, and with mode 0666 so the umask
 * decides the permissions as it would for any other file.
 */
#define _POSIX_C_SOURCE 200809L

#include "model_io.h"
#include "core/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int ps_model_load(const char *path, ps_model *m, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (!m) return ps_fail(err, errlen, PS_EINVAL, "no model to load into");
    memset(m, 0, sizeof *m);
    if (!path) return ps_fail(err, errlen, PS_EINVAL, "no model file path");

    int fd;
    do
        fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return ps_fail(err, errlen, PS_MODEL_EIO, "cannot open model file %s: %s", path,
                       strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return ps_fail(err, errlen, PS_MODEL_EIO, "cannot stat model file %s: %s", path,
                       strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return ps_fail(err, errlen, PS_MODEL_EIO, "model file %s is not a regular file", path);
    }
    if (st.st_size < 0 || (uintmax_t)st.st_size > (uintmax_t)PS_MODEL_FILE_MAX_BYTES) {
        close(fd);
        return ps_fail(err, errlen, PS_MODEL_ETOOLARGE,
                       "model file %s is %jd bytes, more than the %zu this build accepts", path,
                       (intmax_t)st.st_size, (size_t)PS_MODEL_FILE_MAX_BYTES);
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        close(fd);
        return ps_fail(err, errlen, PS_ENOMEM, "out of memory reading model file %s (%zu bytes)",
                       path, size);
    }
    /* A file that shrinks meanwhile decodes as truncated; one that grows is read up to
     * the size seen, and its own declared length tells whether that is the whole model. */
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return ps_fail(err, errlen, PS_MODEL_EIO, "cannot read model file %s: %s", path,
                           strerror(e));
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    close(fd);

    char msg[256];
    int rc = ps_model_decode(buf, got, m, msg, sizeof msg);
    free(buf);
    if (rc) return ps_fail(err, errlen, rc, "%s: %s", path, msg);
    return PS_OK;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Creates "<path>.tmp-<pid>-<n>" exclusively; returns the fd, or -1 with errno set. */
static int create_temp(const char *path, char *tmp, size_t tmplen)
{
    static atomic_uint counter;
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned n = atomic_fetch_add(&counter, 1u);
        snprintf(tmp, tmplen, "%s.tmp-%ld-%u", path, (long)getpid(), n);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || (errno != EEXIST && errno != EINTR)) return fd;
    }
    errno = EEXIST;
    return -1;
}

/* fsync the directory holding path, so that the rename itself is durable. */
static int sync_parent(const char *path, char *dir, size_t dirlen)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, dirlen, ".");
    else if (slash == path)
        snprintf(dir, dirlen, "/");
    else
        snprintf(dir, dirlen, "%.*s", (int)(slash - path), path);
    int fd;
    do
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    /* some file systems cannot sync a directory and say so with EINVAL: nothing to do */
    if (rc != 0 && errno == EINVAL) rc = 0;
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

int ps_model_save(const char *path, const ps_model *m, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (!path) return ps_fail(err, errlen, PS_EINVAL, "no model file path");
    char msg[256];
    if (ps_model_check(m, msg, sizeof msg) != PS_OK)
        return ps_fail(err, errlen, PS_EINVAL, "cannot save model to %s: %s", path, msg);
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = ps_model_encode(m, &buf, &len);
    if (rc)
        return ps_fail(err, errlen, rc, "cannot save model to %s: %s", path, ps_model_strerror(rc));

    size_t tmplen = strlen(path) + 64;
    char *tmp = malloc(tmplen);
    if (!tmp) {
        free(buf);
        return ps_fail(err, errlen, PS_ENOMEM, "cannot save model to %s: out of memory", path);
    }
    int fd = create_temp(path, tmp, tmplen);
    if (fd < 0) {
        rc = ps_fail(err, errlen, PS_MODEL_EIO, "cannot create temporary file %s: %s", tmp,
                     strerror(errno));
        goto out;
    }
    if (write_all(fd, buf, len) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        rc = ps_fail(err, errlen, PS_MODEL_EIO, "cannot write model file %s: %s", tmp, strerror(e));
        goto out;
    }
    if (close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        rc = ps_fail(err, errlen, PS_MODEL_EIO, "cannot write model file %s: %s", tmp, strerror(e));
        goto out;
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        rc = ps_fail(err, errlen, PS_MODEL_EIO, "cannot rename %s to %s: %s", tmp, path,
                     strerror(e));
        goto out;
    }
    /* the directory name is no longer than path, so tmp's buffer holds it */
    if (sync_parent(path, tmp, tmplen) != 0) {
        rc = ps_fail(err, errlen, PS_MODEL_EIO, "saved %s but cannot sync its directory %s: %s",
                     path, tmp, strerror(errno));
        goto out;
    }
    rc = PS_OK;
out:
    free(tmp);
    free(buf);
    return rc;
}
