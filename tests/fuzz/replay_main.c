/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * replay_main.c - a main() for builds without libFuzzer: runs LLVMFuzzerTestOneInput over every
 * regular file of the directories (or the files) given, in name order, so the committed corpus
 * replays in every `make test` configuration. Fails when no input was found, so an empty or
 * misplaced corpus cannot pass silently.
 *
 *   test_fuzz_replay DIR|FILE...
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        perror(path);
        return -1;
    }
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    size_t got;
    while (buf != NULL && (got = fread(buf + n, 1, cap - n, fp)) > 0) {
        n += got;
        if (n == cap) {
            uint8_t *bigger = realloc(buf, cap * 2);
            if (bigger == NULL)
                free(buf);
            buf = bigger;
            cap *= 2;
        }
    }
    fclose(fp);
    if (buf == NULL) {
        fprintf(stderr, "%s: out of memory\n", path);
        return -1;
    }
    LLVMFuzzerTestOneInput(buf, n); /* a mismatch aborts the process, naming the input below */
    free(buf);
    return 0;
}

static int only_visible(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

int main(int argc, char **argv)
{
    unsigned long count = 0;
    int failed = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
        return 2;
    }
    for (int a = 1; a < argc; a++) {
        struct stat st;
        if (stat(argv[a], &st) != 0) {
            perror(argv[a]);
            failed = 1;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            fprintf(stderr, "replay %s\n", argv[a]);
            if (replay_file(argv[a]) != 0)
                failed = 1;
            else
                count++;
            continue;
        }
        struct dirent **names;
        int n = scandir(argv[a], &names, only_visible, alphasort);
        if (n < 0) {
            perror(argv[a]);
            failed = 1;
            continue;
        }
        for (int i = 0; i < n; i++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[a], names[i]->d_name);
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                /* named before it runs: a mismatch aborts inside LLVMFuzzerTestOneInput */
                fprintf(stderr, "replay %s\n", path);
                if (replay_file(path) != 0)
                    failed = 1;
                else
                    count++;
            }
            free(names[i]);
        }
        free(names);
    }
    printf("replayed %lu inputs\n", count);
    if (count == 0) {
        fprintf(stderr, "no inputs found\n");
        return 1;
    }
    return failed;
}
