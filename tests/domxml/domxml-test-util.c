#include "domxml-test-util.h"

#include <gio/gio.h>
#include <string.h>

#include "error.h"

void
golden_case_free(GoldenCase *gc)
{
    if (gc == NULL)
        return;
    g_free(gc->name);
    g_free(gc->dir);
    g_free(gc->mode);
    g_free(gc->functions);
    g_free(gc->explicit_ids);
    g_free(gc->check);
    g_free(gc->summary);
    g_free(gc->remedy);
    g_free(gc->domain_xml);
    g_free(gc->new_name);
    g_free(gc->new_type);
    g_free(gc);
}

const char *
golden_data_dir(void)
{
    return ZPCID_DOMXML_DATA_DIR;
}

static gint
compare_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

GPtrArray *
golden_list_cases(void)
{
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GDir) dir = g_dir_open(golden_data_dir(), 0, NULL);
    const char *name;

    g_assert_nonnull(dir);
    while ((name = g_dir_read_name(dir)) != NULL) {
        g_autofree char *ini = g_build_filename(golden_data_dir(), name, "request.ini", NULL);
        if (g_file_test(ini, G_FILE_TEST_IS_REGULAR))
            g_ptr_array_add(names, g_strdup(name));
    }
    g_ptr_array_sort(names, compare_names);
    return names;
}

char *
golden_case_read(GoldenCase *gc, const char *file)
{
    g_autofree char *path = g_build_filename(gc->dir, file, NULL);
    char *contents = NULL;

    if (!g_file_get_contents(path, &contents, NULL, NULL))
        return NULL;
    return contents;
}

static gboolean
parse_id(GKeyFile *kf, const char *group, const char *key, guint64 max, guint64 *value,
         gboolean *present, GError **error)
{
    g_autofree char *text = g_key_file_get_string(kf, group, key, NULL);

    *present = text != NULL;
    if (text == NULL)
        return TRUE;
    return zpcid_parse_id(text, max, value, error);
}

GoldenCase *
golden_case_load(const char *name, GError **error)
{
    g_autoptr(GoldenCase) gc = g_new0(GoldenCase, 1);
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autofree char *ini = NULL;
    g_autofree char *policy = NULL, *interpretation = NULL, *domain = NULL;
    g_auto(GStrv) groups = NULL;
    gsize n = 0;

    gc->name = g_strdup(name);
    gc->dir = g_build_filename(golden_data_dir(), name, NULL);
    ini = g_build_filename(gc->dir, "request.ini", NULL);
    if (!g_key_file_load_from_file(kf, ini, G_KEY_FILE_NONE, error))
        return NULL;
    gc->mode = g_key_file_get_string(kf, "request", "mode", error);
    if (gc->mode == NULL)
        return NULL;
    policy = g_key_file_get_string(kf, "request", "policy", NULL);
    interpretation = g_key_file_get_string(kf, "request", "interpretation", NULL);
    if (!zpcid_zpci_policy_from_string(policy != NULL ? policy : "auto", &gc->request.policy,
                                       error) ||
        !zpcid_interpretation_from_string(interpretation != NULL ? interpretation : "required",
                                          &gc->request.interpretation, error))
        return NULL;
    gc->request.verdict.ok = !g_key_file_has_key(kf, "request", "verdict-ok", NULL) ||
                             g_key_file_get_boolean(kf, "request", "verdict-ok", NULL);
    gc->check = g_key_file_get_string(kf, "request", "verdict-check", NULL);
    gc->summary = g_key_file_get_string(kf, "request", "verdict-summary", NULL);
    gc->remedy = g_key_file_get_string(kf, "request", "verdict-remedy", NULL);
    gc->request.verdict.check = gc->check;
    gc->request.verdict.summary = gc->summary;
    gc->request.verdict.remedy = gc->remedy;

    domain = g_key_file_get_string(kf, "request", "domain", NULL);
    if (domain != NULL) {
        g_autofree char *path = g_build_filename(gc->dir, domain, NULL);
        if (!g_file_get_contents(path, &gc->domain_xml, NULL, error))
            return NULL;
    }
    gc->new_name = g_key_file_get_string(kf, "request", "name", NULL);
    gc->new_type = g_key_file_get_string(kf, "request", "type", NULL);
    gc->params.name = gc->new_name;
    gc->params.type = gc->new_type;
    gc->params.emulator = NULL;

    groups = g_key_file_get_groups(kf, &n);
    gc->functions = g_new0(ZpcidDomxmlFunction, n);
    gc->explicit_ids = g_new0(ZpcidZpciIds, n);
    for (gsize i = 0; i < n; i++) {
        const char *group = groups[i];
        ZpcidDomxmlFunction *f = &gc->functions[gc->request.n_functions];
        ZpcidZpciIds *ids = &gc->explicit_ids[gc->request.n_functions];
        guint64 v = 0;
        gboolean present;

        if (!g_str_has_prefix(group, "function "))
            continue;
        /* "function ADDRESS [tag]": a tag lets a request name a function twice. */
        g_auto(GStrv) words = g_strsplit(group + strlen("function "), " ", 2);
        if (!zpcid_pci_address_parse(words[0], &f->address, error))
            return NULL;
        if (!parse_id(kf, group, "fid", ZPCID_FID_MAX, &v, &present, error))
            return NULL;
        f->fid = (guint32)v;
        if (!parse_id(kf, group, "uid", G_MAXUINT32, &v, &present, error))
            return NULL;
        f->uid = (guint32)v;
        f->uid_known = present;
        f->uid_checking = !g_key_file_has_key(kf, group, "uid-checking", NULL) ||
                          g_key_file_get_boolean(kf, group, "uid-checking", NULL);
        f->managed = !g_key_file_has_key(kf, group, "managed", NULL) ||
                     g_key_file_get_boolean(kf, group, "managed", NULL);
        /* The explicit uid is read without range so that bad values reach the library. */
        if (!parse_id(kf, group, "explicit-uid", G_MAXUINT32, &v, &present, error))
            return NULL;
        ids->uid = (guint32)v;
        if (!parse_id(kf, group, "explicit-fid", ZPCID_FID_MAX, &v, &present, error))
            return NULL;
        ids->fid = (guint32)v;
        gc->request.n_functions++;
    }
    gc->request.functions = gc->functions;
    gc->request.explicit_ids = gc->explicit_ids;
    return g_steal_pointer(&gc);
}

ZpcidDomxmlResult *
golden_case_run(GoldenCase *gc, GError **error)
{
    if (g_str_equal(gc->mode, "merge"))
        return zpcid_domxml_merge(&gc->request, gc->domain_xml, error);
    if (g_str_equal(gc->mode, "fragment"))
        return zpcid_domxml_build_hostdevs(&gc->request, gc->domain_xml, error);
    if (g_str_equal(gc->mode, "new"))
        return zpcid_domxml_new_domain(&gc->request, &gc->params, error);
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "unknown mode %s in %s", gc->mode,
                gc->name);
    return NULL;
}

char *
golden_result_text(GoldenCase *gc, ZpcidDomxmlResult *result)
{
    GString *out;

    if (result->xml != NULL)
        return g_strdup(result->xml);
    out = g_string_new(NULL);
    for (guint i = 0; i < result->hostdevs->len; i++)
        g_string_append(out, g_ptr_array_index(result->hostdevs, i));
    return g_string_free(out, FALSE);
}

const char *
golden_error_name(gint code)
{
    switch (code) {
    case ZPCID_ERROR_FAILED:
        return "FAILED";
    case ZPCID_ERROR_NOT_FOUND:
        return "NOT_FOUND";
    case ZPCID_ERROR_INVALID_ARGUMENT:
        return "INVALID_ARGUMENT";
    case ZPCID_ERROR_BUSY:
        return "BUSY";
    case ZPCID_ERROR_NOT_READY:
        return "NOT_READY";
    case ZPCID_ERROR_CONFLICT:
        return "CONFLICT";
    case ZPCID_ERROR_NOT_AUTHORIZED:
        return "NOT_AUTHORIZED";
    case ZPCID_ERROR_UNSUPPORTED:
        return "UNSUPPORTED";
    default:
        return "OTHER";
    }
}
