/*
 * test_exclude.c - exclude patterns: each rule of docs/CLI.md, "**" in
 * every position, character classes, and pattern files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cairn/err.h"
#include "scan/exclude.h"

/* Match path (its name taken from after the last '/'). */
static int m(const struct cairn_exclude *x, const char *path, int is_dir)
{
    const char *slash = strrchr(path, '/');

    return cairn_exclude_match(x, path, strlen(path),
                               slash != NULL ? slash + 1 : path, is_dir);
}

static struct cairn_exclude *one(const char *pattern)
{
    struct cairn_exclude *x = NULL;

    assert_int_equal(cairn_exclude_new(&x), 0);
    assert_int_equal(cairn_exclude_add(x, pattern), 0);
    return x;
}

static void test_empty(void **state)
{
    struct cairn_exclude *x = NULL;

    (void)state;
    assert_int_equal(cairn_exclude_new(&x), 0);
    assert_int_equal(m(x, "/a/b", 0), 0);
    assert_int_equal(cairn_exclude_add(x, ""), CAIRN_EINVAL);
    assert_int_equal(cairn_exclude_add(x, "/"), CAIRN_EINVAL);
    assert_int_equal(cairn_exclude_add(x, "//"), CAIRN_EINVAL);
    assert_int_equal(m(x, "/a/b", 1), 0);
    cairn_exclude_free(x);
    cairn_exclude_free(NULL);
}

/* Without '/': the last component only. */
static void test_name_patterns(void **state)
{
    struct cairn_exclude *x;

    (void)state;
    x = one("node_modules");
    assert_int_equal(m(x, "/home/ana/src/node_modules", 1), 1);
    assert_int_equal(m(x, "/node_modules", 0), 1);
    assert_int_equal(m(x, "/home/ana/node_modules2", 1), 0);
    assert_int_equal(m(x, "/home/ana/xnode_modules", 1), 0);
    /* Only the name counts, not the parents. */
    assert_int_equal(m(x, "/node_modules/a", 0), 0);
    cairn_exclude_free(x);

    x = one("*.tmp");
    assert_int_equal(m(x, "/a/b.tmp", 0), 1);
    assert_int_equal(m(x, "/a/.tmp", 0), 1); /* no FNM_PERIOD */
    assert_int_equal(m(x, "/a/b.tmp2", 0), 0);
    assert_int_equal(m(x, "/a/b.tm", 0), 0);
    assert_int_equal(m(x, "/a.tmp/b", 0), 0);
    cairn_exclude_free(x);

    x = one("*");
    assert_int_equal(m(x, "/a/.hidden", 0), 1);
    cairn_exclude_free(x);

    x = one("a?c");
    assert_int_equal(m(x, "/x/abc", 0), 1);
    assert_int_equal(m(x, "/x/ac", 0), 0);
    assert_int_equal(m(x, "/x/abbc", 0), 0);
    cairn_exclude_free(x);

    x = one(".*");
    assert_int_equal(m(x, "/x/.git", 1), 1);
    assert_int_equal(m(x, "/x/git", 1), 0);
    cairn_exclude_free(x);

    x = one("core.*.dump");
    assert_int_equal(m(x, "/x/core.123.dump", 0), 1);
    assert_int_equal(m(x, "/x/core.dump", 0), 0);
    cairn_exclude_free(x);
}

static void test_classes(void **state)
{
    struct cairn_exclude *x;

    (void)state;
    x = one("file[0-9].txt");
    assert_int_equal(m(x, "/d/file7.txt", 0), 1);
    assert_int_equal(m(x, "/d/filea.txt", 0), 0);
    assert_int_equal(m(x, "/d/file10.txt", 0), 0);
    cairn_exclude_free(x);

    x = one("[!a]*");
    assert_int_equal(m(x, "/d/abc", 0), 0);
    assert_int_equal(m(x, "/d/bcd", 0), 1);
    cairn_exclude_free(x);

    x = one("*.[oa]");
    assert_int_equal(m(x, "/d/x.o", 0), 1);
    assert_int_equal(m(x, "/d/x.a", 0), 1);
    assert_int_equal(m(x, "/d/x.so", 0), 0);
    cairn_exclude_free(x);

    x = one("[[:upper:]]*");
    assert_int_equal(m(x, "/d/Makefile", 0), 1);
    assert_int_equal(m(x, "/d/makefile", 0), 0);
    cairn_exclude_free(x);

    /* Escapes: a literal '*'. */
    x = one("a\\*");
    assert_int_equal(m(x, "/d/a*", 0), 1);
    assert_int_equal(m(x, "/d/ab", 0), 0);
    cairn_exclude_free(x);

    /* Classes inside path patterns. */
    x = one("/home/[ab]*/.cache");
    assert_int_equal(m(x, "/home/ana/.cache", 1), 1);
    assert_int_equal(m(x, "/home/bo/.cache", 1), 1);
    assert_int_equal(m(x, "/home/cy/.cache", 1), 0);
    cairn_exclude_free(x);
}

/* With '/': anchored, component by component. */
static void test_path_patterns(void **state)
{
    struct cairn_exclude *x;

    (void)state;
    x = one("/home/*/.cache");
    assert_int_equal(m(x, "/home/ana/.cache", 1), 1);
    assert_int_equal(m(x, "/home/ana/.cache", 0), 1);
    /* Inside an excluded directory. */
    assert_int_equal(m(x, "/home/ana/.cache/x/y", 0), 1);
    /* '*' is one component, never more. */
    assert_int_equal(m(x, "/home/ana/sub/.cache", 1), 0);
    assert_int_equal(m(x, "/home/.cache", 1), 0);
    /* Anchored at the start. */
    assert_int_equal(m(x, "/x/home/ana/.cache", 1), 0);
    assert_int_equal(m(x, "/home/ana/.cache2", 1), 0);
    assert_int_equal(m(x, "/home/ana", 1), 0);
    /* Repeated slashes in the path are one separator. */
    assert_int_equal(m(x, "//home//ana/.cache", 1), 1);
    cairn_exclude_free(x);

    x = one("/tmp");
    assert_int_equal(m(x, "/tmp", 1), 1);
    assert_int_equal(m(x, "/tmp/a", 0), 1);
    assert_int_equal(m(x, "/tmpx", 0), 0);
    assert_int_equal(m(x, "/var/tmp", 1), 0);
    cairn_exclude_free(x);

    /* Relative with '/': at any depth. */
    x = one("build/out");
    assert_int_equal(m(x, "/build/out", 1), 1);
    assert_int_equal(m(x, "/p/q/build/out", 1), 1);
    assert_int_equal(m(x, "/p/build/out/f", 0), 1);
    assert_int_equal(m(x, "/p/build/x/out", 1), 0);
    assert_int_equal(m(x, "/p/build", 1), 0);
    cairn_exclude_free(x);

    /* Suffix components inside a path pattern, and a path not
     * NUL-terminated at path_len. */
    x = one("/var/log/*.gz");
    assert_int_equal(m(x, "/var/log/a.gz", 0), 1);
    assert_int_equal(m(x, "/var/log/a.gzip", 0), 0);
    assert_int_equal(cairn_exclude_match(x, "/var/log/a.gz.1", 13, "a.gz", 0),
                     1);
    cairn_exclude_free(x);
}

static void test_starstar(void **state)
{
    struct cairn_exclude *x;

    (void)state;
    /* Middle. */
    x = one("/home/**/build");
    assert_int_equal(m(x, "/home/build", 1), 1); /* zero components */
    assert_int_equal(m(x, "/home/a/build", 1), 1);
    assert_int_equal(m(x, "/home/a/b/c/build", 1), 1);
    assert_int_equal(m(x, "/home/a/b/c/build/x.o", 0), 1);
    assert_int_equal(m(x, "/home/a/b/c/builds", 1), 0);
    assert_int_equal(m(x, "/opt/a/build", 1), 0);
    assert_int_equal(m(x, "/home", 1), 0);
    cairn_exclude_free(x);

    /* Start. */
    x = one("**/target");
    assert_int_equal(m(x, "/target", 1), 1);
    assert_int_equal(m(x, "/a/b/target", 1), 1);
    assert_int_equal(m(x, "/a/b/target2", 1), 0);
    cairn_exclude_free(x);
    x = one("/**/*.log");
    assert_int_equal(m(x, "/x.log", 0), 1);
    assert_int_equal(m(x, "/a/b/x.log", 0), 1);
    assert_int_equal(m(x, "/a/b/x.log.1", 0), 0);
    cairn_exclude_free(x);

    /* End. */
    x = one("/srv/**");
    assert_int_equal(m(x, "/srv", 1), 1);
    assert_int_equal(m(x, "/srv/a/b", 0), 1);
    assert_int_equal(m(x, "/srvx", 1), 0);
    cairn_exclude_free(x);

    /* Several, with backtracking: the first 'a' is not the right one. */
    x = one("/**/a/**/b/c");
    assert_int_equal(m(x, "/a/x/a/y/b/c", 0), 1);
    assert_int_equal(m(x, "/a/b/c", 0), 1);
    assert_int_equal(m(x, "/x/a/b/x/c", 0), 0);
    assert_int_equal(m(x, "/a/x/b/c/d", 0), 1);
    assert_int_equal(m(x, "/b/c", 0), 0);
    cairn_exclude_free(x);
    x = one("/**/**/q");
    assert_int_equal(m(x, "/q", 0), 1);
    assert_int_equal(m(x, "/a/b/q", 0), 1);
    cairn_exclude_free(x);
}

/* A trailing '/': directories only. */
static void test_dir_only(void **state)
{
    struct cairn_exclude *x;

    (void)state;
    x = one("cache/");
    assert_int_equal(m(x, "/a/cache", 1), 1);
    assert_int_equal(m(x, "/a/cache", 0), 0);
    cairn_exclude_free(x);

    x = one("/home/**/build/");
    assert_int_equal(m(x, "/home/a/build", 1), 1);
    assert_int_equal(m(x, "/home/a/build", 0), 0);
    /* A file inside the excluded directory is excluded with it. */
    assert_int_equal(m(x, "/home/a/build/f", 0), 1);
    /* A file named build deeper under a dir named build. */
    assert_int_equal(m(x, "/home/build/x/build", 0), 1);
    assert_int_equal(m(x, "/home/x/y/build", 0), 0);
    cairn_exclude_free(x);
}

static void test_many(void **state)
{
    struct cairn_exclude *x = NULL;

    (void)state;
    assert_int_equal(cairn_exclude_new(&x), 0);
    assert_int_equal(cairn_exclude_add(x, "*.o"), 0);
    assert_int_equal(cairn_exclude_add(x, "/proc"), 0);
    assert_int_equal(cairn_exclude_add(x, ".git/"), 0);
    assert_int_equal(m(x, "/src/a.o", 0), 1);
    assert_int_equal(m(x, "/proc/1/maps", 0), 1);
    assert_int_equal(m(x, "/src/.git", 1), 1);
    assert_int_equal(m(x, "/src/.git", 0), 0);
    assert_int_equal(m(x, "/src/a.c", 0), 0);
    cairn_exclude_free(x);
}

static void test_file(void **state)
{
    char path[] = "/tmp/cairn-test-exclude-XXXXXX";
    struct cairn_exclude *x = NULL;
    FILE *f;
    int fd;

    (void)state;
    assert_true((fd = mkstemp(path)) >= 0);
    assert_non_null(f = fdopen(fd, "w"));
    fputs("# a comment\n"
          "\n"
          "   \t\n"
          "*.tmp\n"
          "/home/*/.cache/\r\n"
          "#not-a-pattern\n"
          "last-line-without-newline",
          f);
    fclose(f);

    assert_int_equal(cairn_exclude_new(&x), 0);
    assert_int_equal(cairn_exclude_add_file(x, path), 0);
    assert_int_equal(m(x, "/a/x.tmp", 0), 1);
    assert_int_equal(m(x, "/home/u/.cache", 1), 1);
    assert_int_equal(m(x, "/home/u/.cache", 0), 0);
    assert_int_equal(m(x, "/a/#not-a-pattern", 0), 0);
    assert_int_equal(m(x, "/a/# a comment", 0), 0);
    assert_int_equal(m(x, "/a/last-line-without-newline", 0), 1);
    assert_int_equal(m(x, "/a/other", 0), 0);
    cairn_exclude_free(x);

    /* A NUL byte in a line. */
    assert_non_null(f = fopen(path, "w"));
    fwrite("ok\nb\0d\n", 1, 7, f);
    fclose(f);
    assert_int_equal(cairn_exclude_new(&x), 0);
    assert_int_equal(cairn_exclude_add_file(x, path), CAIRN_ECORRUPT);
    cairn_exclude_free(x);

    unlink(path);
    assert_int_equal(cairn_exclude_new(&x), 0);
    assert_int_equal(cairn_exclude_add_file(x, path), CAIRN_ENOENT);
    cairn_exclude_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),    cmocka_unit_test(test_name_patterns),
        cmocka_unit_test(test_classes),  cmocka_unit_test(test_path_patterns),
        cmocka_unit_test(test_starstar), cmocka_unit_test(test_dir_only),
        cmocka_unit_test(test_many),     cmocka_unit_test(test_file),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
