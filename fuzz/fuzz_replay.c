/*
 * fuzz_replay.c - run a fuzz target over saved inputs, without libFuzzer.
 *
 * Usage: fuzz_NAME PATH...  Each PATH is a file or a directory of files;
 * every file is fed to LLVMFuzzerTestOneInput once, then every proper
 * prefix of it at a few lengths (truncation is the commonest damage), and
 * a few single-byte corruptions.  Exits 0 if nothing crashed.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static unsigned long ninputs;

static int run_one(const char *path)
{
    FILE *f;
    uint8_t *buf = NULL, *copy = NULL;
    long len;
    size_t i, step;
    int rc = -1;

    if ((f = fopen(path, "rb")) == NULL) {
        perror(path);
        goto err0;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0) {
        perror(path);
        goto err1;
    }
    if ((buf = malloc((size_t)len + 1)) == NULL ||
        (copy = malloc((size_t)len + 1)) == NULL)
        goto err1;
    if (len > 0 && fread(buf, 1, (size_t)len, f) != (size_t)len) {
        perror(path);
        goto err1;
    }

    /* The input itself. */
    LLVMFuzzerTestOneInput(buf, (size_t)len);
    /* Truncations (each in its own allocation so ASan sees overreads). */
    step = (size_t)len / 16 + 1;
    for (i = 0; i < (size_t)len; i += step) {
        memcpy(copy, buf, i);
        LLVMFuzzerTestOneInput(copy, i);
    }
    /* Single-byte flips spread over the input. */
    for (i = 0; i < (size_t)len; i += step) {
        memcpy(copy, buf, (size_t)len);
        copy[i] ^= 0x5a;
        LLVMFuzzerTestOneInput(copy, (size_t)len);
    }
    ninputs++;
    rc = 0;

err1:
    free(copy);
    free(buf);
    fclose(f);
err0:
    return rc;
}

static int run_path(const char *path)
{
    struct stat st;
    DIR *d;
    struct dirent *de;
    char sub[4096];
    int rc = 0;

    if (stat(path, &st) != 0) {
        perror(path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return run_one(path);
    if ((d = opendir(path)) == NULL) {
        perror(path);
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name) >=
            sizeof(sub))
            continue;
        if (run_path(sub) != 0)
            rc = -1;
    }
    closedir(d);
    return rc;
}

int main(int argc, char **argv)
{
    int i, rc = 0;

    for (i = 1; i < argc; i++)
        if (run_path(argv[i]) != 0)
            rc = 1;
    if (ninputs == 0) {
        fprintf(stderr, "no inputs found\n");
        return 1;
    }
    printf("replayed %lu inputs\n", ninputs);
    return rc;
}
