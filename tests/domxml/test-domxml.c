/* Pure XML tests of domxml.c: golden cases under tests/data/domxml/ and the invariants every
 * successful output must keep. ZPCID_TEST_REGENERATE=1 rewrites the expected files. */
#include <glib.h>
#include <glib/gstdio.h>
#include <locale.h>
#include <string.h>

#include "domxml-test-util.h"
#include "domxml.h"
#include "error.h"
#include "zpcid-names.h"

static gboolean regenerate;

/* Compares @actual with the case's @file; NULL @actual means the file must not exist. */
static void
check_file(GoldenCase *gc, const char *file, const char *actual)
{
    g_autofree char *path = g_build_filename(gc->dir, file, NULL);
    g_autofree char *expected = NULL;

    if (regenerate) {
        if (actual != NULL)
            g_assert_true(g_file_set_contents(path, actual, -1, NULL));
        else
            (void)g_unlink(path);
        return;
    }
    g_file_get_contents(path, &expected, NULL, NULL);
    if (actual == NULL) {
        if (expected != NULL)
            g_error("%s: %s exists but the run produced nothing for it", gc->name, file);
        return;
    }
    if (expected == NULL)
        g_error("%s: %s is missing; the run produced:\n%s", gc->name, file, actual);
    g_assert_cmpstr(actual, ==, expected);
}

static char *
join_lines(GPtrArray *lines)
{
    GString *out = g_string_new(NULL);

    for (guint i = 0; i < lines->len; i++)
        g_string_append_printf(out, "%s\n", (const char *)g_ptr_array_index(lines, i));
    return g_string_free(out, FALSE);
}

/* TRUE if the lines of @input appear, byte for byte and in order, among those of @output:
 * merging only ever adds lines (or, in compact documents, text within a line). */
static gboolean
lines_are_subsequence(const char *input, const char *output)
{
    g_auto(GStrv) in = g_strsplit(input, "\n", -1);
    g_auto(GStrv) out = g_strsplit(output, "\n", -1);
    guint i = 0;

    for (guint j = 0; in[i] != NULL && out[j] != NULL; j++) {
        if (strcmp(in[i], out[j]) == 0)
            i++;
    }
    return in[i] == NULL;
}

static gboolean
chars_are_subsequence(const char *input, const char *output)
{
    for (; *output != '\0' && *input != '\0'; output++) {
        if (*output == *input)
            input++;
    }
    return *input == '\0';
}

static void
check_hex_attributes(const char *text)
{
    g_autoptr(GRegex) attr = g_regex_new("\\b(uid|fid|domain|bus|slot|function)=\"([^\"]*)\"",
                                         0, 0, NULL);
    g_autoptr(GMatchInfo) match = NULL;

    g_regex_match(attr, text, 0, &match);
    while (g_match_info_matches(match)) {
        g_autofree char *value = g_match_info_fetch(match, 2);
        /* libvirt reads a leading 0 as octal: everything we write is 0x-prefixed. */
        g_assert_true(g_str_has_prefix(value, "0x"));
        g_match_info_next(match, NULL);
    }
}

static void
check_schema(GoldenCase *gc, const char *text)
{
    g_autoptr(GError) error = NULL;
    ZpcidDomxmlSchemaResult r = zpcid_domxml_validate(text, &error);

    if (r == ZPCID_DOMXML_SCHEMA_NOT_INSTALLED) {
        g_test_message("%s: schema check skipped: %s", gc->name, error->message);
        return;
    }
    if (r != ZPCID_DOMXML_SCHEMA_VALID)
        g_error("%s: output does not match libvirt's schema: %s\n%s", gc->name, error->message,
                text);
}

static void
check_success(GoldenCase *gc, ZpcidDomxmlResult *result, const char *text)
{
    const ZpcidDomxmlRequest *req = &gc->request;

    g_assert_cmpuint(result->hostdevs->len, ==, req->n_functions);
    g_assert_cmpuint(result->ids->len, ==, req->n_functions);
    for (guint i = 0; i < result->warnings->len; i++)
        g_assert_null(strstr(g_ptr_array_index(result->warnings, i), "written out anew"));
    for (guint i = 0; i < result->hostdevs->len; i++) {
        check_hex_attributes(g_ptr_array_index(result->hostdevs, i));
        check_schema(gc, g_ptr_array_index(result->hostdevs, i));
    }
    g_assert_nonnull(result->metadata);

    if (result->xml != NULL) {
        g_autoptr(GError) error = NULL;
        g_autoptr(ZpcidDomxmlInfo) info = zpcid_domxml_inspect(result->xml, &error);

        g_assert_no_error(error);
        check_schema(gc, result->xml);
        for (gsize i = 0; i < req->n_functions; i++) {
            const ZpcidZpciIds *ids = &g_array_index(result->ids, ZpcidZpciIds, i);
            gboolean found_ids = FALSE, found_intent = FALSE;

            g_assert_true(zpcid_domxml_info_uses(info, &req->functions[i].address));
            for (guint j = 0; j < info->zpci->len; j++) {
                ZpcidDomxmlZpci *z = &g_array_index(info->zpci, ZpcidDomxmlZpci, j);
                if (z->uid_set && z->fid_set && z->uid == ids->uid && z->fid == ids->fid)
                    found_ids = TRUE;
            }
            for (guint j = 0; j < info->intents->len; j++) {
                ZpcidDomxmlIntent *in = &g_array_index(info->intents, ZpcidDomxmlIntent, j);
                if (memcmp(&in->address, &req->functions[i].address, sizeof(in->address)) == 0) {
                    g_assert_cmpuint(in->ids.uid, ==, ids->uid);
                    g_assert_cmpuint(in->ids.fid, ==, ids->fid);
                    g_assert_cmpint(in->policy, ==, req->policy);
                    g_assert_cmpint(in->interpretation, ==, req->interpretation);
                    if (req->interpretation != ZPCID_INTERPRETATION_OFF)
                        g_assert_cmpint(in->verdict_ok, ==, req->verdict.ok);
                    found_intent = TRUE;
                }
            }
            g_assert_true(found_ids);
            g_assert_true(found_intent);
        }
    }

    if (g_str_equal(gc->mode, "merge")) {
        g_autoptr(GError) error = NULL;
        g_autoptr(ZpcidDomxmlResult) again = NULL;

        /* Nothing of the original is lost or changed: its lines are all still there, in
         * order, and so are its characters (compact documents). Cases that rewrite an element
         * (an empty <devices/>, an earlier zpcid record) say so with a file "rewrites". */
        g_autofree char *rewrites = golden_case_read(gc, "rewrites");
        if (rewrites == NULL) {
            g_assert_true(chars_are_subsequence(gc->domain_xml, text));
            if (strchr(gc->domain_xml, '\n') != NULL)
                g_assert_true(lines_are_subsequence(gc->domain_xml, text));
        }

        /* A second merge finds the functions present. */
        again = zpcid_domxml_merge(req, text, &error);
        g_assert_null(again);
        g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_CONFLICT);
    }
}

static void
test_golden(gconstpointer data)
{
    const char *name = data;
    g_autoptr(GError) error = NULL;
    g_autoptr(GoldenCase) gc = golden_case_load(name, &error);
    g_autoptr(ZpcidDomxmlResult) result = NULL;

    g_assert_no_error(error);
    result = golden_case_run(gc, &error);
    if (result == NULL) {
        g_autofree char *err_text = NULL;

        g_assert_nonnull(error);
        g_assert_true(error->domain == ZPCID_ERROR);
        err_text = g_strdup_printf("%s\n%s\n", golden_error_name(error->code), error->message);
        check_file(gc, "expected-error.txt", err_text);
        check_file(gc, "expected.xml", NULL);
        check_file(gc, "expected-metadata.xml", NULL);
        check_file(gc, "expected-warnings.txt", NULL);
    } else {
        g_autofree char *text = golden_result_text(gc, result);
        g_autofree char *warnings = result->warnings->len > 0 ? join_lines(result->warnings)
                                                              : NULL;

        check_file(gc, "expected-error.txt", NULL);
        check_file(gc, "expected.xml", text);
        check_file(gc, "expected-metadata.xml", result->metadata);
        check_file(gc, "expected-warnings.txt", warnings);
        check_success(gc, result, text);
    }
}

/* ---------------------------------------------------------------------------------------- */

static const ZpcidDomxmlFunction fixture_function = {
    .address = {.domain = 0x5, .bus = 0, .slot = 0, .function = 0},
    .fid = 0x11,
    .uid = 0x5,
    .uid_known = TRUE,
    .uid_checking = TRUE,
    .managed = TRUE,
};

static ZpcidDomxmlRequest
simple_request(ZpcidZpciPolicy policy)
{
    ZpcidDomxmlRequest req = {
        .functions = &fixture_function,
        .n_functions = 1,
        .policy = policy,
        .interpretation = ZPCID_INTERPRETATION_REQUIRED,
        .verdict = {.ok = TRUE},
    };
    return req;
}

static void
test_huge_input(void)
{
    ZpcidDomxmlRequest req = simple_request(ZPCID_ZPCI_POLICY_AUTO);
    g_autoptr(GError) error = NULL;
    g_autoptr(GString) doc = g_string_new("<domain><name>x</name><description>");
    g_autoptr(ZpcidDomxmlResult) result = NULL;

    while (doc->len <= ZPCID_DOMXML_MAX_SIZE)
        g_string_append(doc, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n");
    g_string_append(doc, "</description></domain>");
    result = zpcid_domxml_merge(&req, doc->str, &error);
    g_assert_null(result);
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull(strstr(error->message, "larger than the limit"));
}

static void
test_billion_laughs(void)
{
    /* Ten levels of ten: 10^9 "lol"s if anything expanded them. */
    static const char bomb[] =
        "<?xml version=\"1.0\"?>\n"
        "<!DOCTYPE domain [\n"
        " <!ENTITY lol \"lol\">\n"
        " <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
        " <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
        " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
        " <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n"
        " <!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">\n"
        " <!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">\n"
        " <!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">\n"
        " <!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">\n"
        " <!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">\n"
        "]>\n"
        "<domain type='kvm'><name>&lol9;</name></domain>\n";
    ZpcidDomxmlRequest req = simple_request(ZPCID_ZPCI_POLICY_AUTO);
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidDomxmlResult) result = NULL;
    g_autoptr(ZpcidDomxmlInfo) info = NULL;
    gint64 start = g_get_monotonic_time();

    result = zpcid_domxml_merge(&req, bomb, &error);
    g_assert_null(result);
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull(strstr(error->message, "document type declaration"));
    g_clear_error(&error);
    info = zpcid_domxml_inspect(bomb, &error);
    g_assert_null(info);
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);
    g_assert_cmpint(zpcid_domxml_validate(bomb, &error), !=, ZPCID_DOMXML_SCHEMA_VALID);
    g_assert_nonnull(error);
    /* Refused without expanding anything. */
    g_assert_cmpint(g_get_monotonic_time() - start, <, 2 * G_USEC_PER_SEC);
}

static void
test_external_entity(void)
{
    static const char xxe[] = "<!DOCTYPE domain SYSTEM \"http://example.invalid/x.dtd\">"
                              "<domain><name>&ext;</name></domain>";
    static const char undefined[] = "<domain><name>&ext;</name></domain>";
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidDomxmlInfo) info = zpcid_domxml_inspect(xxe, &error);

    g_assert_null(info);
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);
    info = zpcid_domxml_inspect(undefined, &error);
    g_assert_null(info);
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull(strstr(error->message, "not well-formed"));
}

static void
test_not_utf8(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidDomxmlInfo) info = zpcid_domxml_inspect("<domain><name>\xff</name></domain>",
                                                           &error);
    g_assert_null(info);
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT);
}

static void
test_words(void)
{
    ZpcidZpciPolicy policy;
    ZpcidInterpretation interp;
    g_autoptr(GError) error = NULL;

    for (int p = ZPCID_ZPCI_POLICY_MIRROR; p <= ZPCID_ZPCI_POLICY_EXPLICIT; p++) {
        g_assert_true(zpcid_zpci_policy_from_string(zpcid_zpci_policy_to_string(p), &policy,
                                                    NULL));
        g_assert_cmpint(policy, ==, p);
    }
    for (int i = ZPCID_INTERPRETATION_REQUIRED; i <= ZPCID_INTERPRETATION_OFF; i++) {
        g_assert_true(zpcid_interpretation_from_string(zpcid_interpretation_to_string(i),
                                                       &interp, NULL));
        g_assert_cmpint(interp, ==, i);
    }
    g_assert_false(zpcid_zpci_policy_from_string("random", &policy, &error));
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT);
}

static void
test_inspect(void)
{
    static const char xml[] =
        "<domain type='kvm'><name>g</name>"
        "<os><type arch='s390x'>hvm</type></os>"
        "<launchSecurity type='s390-pv'/>"
        "<devices>"
        "<hostdev mode='subsystem' type='pci'><source><address domain='0x0005' bus='0' "
        "slot='0' function='0'/></source><address type='pci'><zpci uid='0010' "
        "fid='0x11'/></address></hostdev>"
        "<interface type='hostdev'><mac address='52:54:00:00:00:01'/><source><address "
        "type='pci' domain='6' bus='0x00' slot='0x00' function='0x1'/></source></interface>"
        "<hostdev mode='subsystem' type='usb'><source><vendor id='0x1'/><product "
        "id='0x2'/></source></hostdev>"
        "<disk type='file' device='disk'><target dev='vda'/><address type='pci'><zpci "
        "uid='0x2'/></address></disk>"
        "</devices></domain>";
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidDomxmlInfo) info = zpcid_domxml_inspect(xml, &error);
    ZpcidPciAddress a5 = {5, 0, 0, 0}, a6 = {6, 0, 0, 1}, a7 = {7, 0, 0, 0};
    ZpcidDomxmlZpci *z;

    g_assert_no_error(error);
    g_assert_cmpstr(info->name, ==, "g");
    g_assert_cmpstr(info->arch, ==, "s390x");
    g_assert_true(info->secure_execution);
    g_assert_cmpuint(info->sources->len, ==, 2);
    g_assert_true(zpcid_domxml_info_uses(info, &a5));
    g_assert_true(zpcid_domxml_info_uses(info, &a6));
    g_assert_false(zpcid_domxml_info_uses(info, &a7));
    g_assert_true(g_array_index(info->sources, ZpcidDomxmlSource, 1).interface);
    g_assert_cmpuint(info->zpci->len, ==, 2);
    z = &g_array_index(info->zpci, ZpcidDomxmlZpci, 0);
    /* libvirt's reading: '0010' is octal. */
    g_assert_cmpuint(z->uid, ==, 8);
    g_assert_cmpuint(z->fid, ==, 0x11);
    g_assert_cmpstr(z->device, ==, "hostdev “0005:00:00.0”");
    z = &g_array_index(info->zpci, ZpcidDomxmlZpci, 1);
    g_assert_true(z->uid_set);
    g_assert_false(z->fid_set);
    g_assert_cmpstr(z->device, ==, "disk “vda”");
}

static void
test_fragment_without_domain_auto(void)
{
    ZpcidDomxmlFunction fns[3] = {fixture_function, fixture_function, fixture_function};
    ZpcidDomxmlRequest req = simple_request(ZPCID_ZPCI_POLICY_AUTO);
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidDomxmlResult) result = NULL;

    fns[1].address.domain = 6;
    fns[2].address.domain = 7;
    req.functions = fns;
    req.n_functions = 3;
    result = zpcid_domxml_build_hostdevs(&req, NULL, &error);
    g_assert_no_error(error);
    /* Lowest free, as libvirt would choose: uid from 1, fid from 0. */
    for (guint i = 0; i < 3; i++) {
        g_assert_cmpuint(g_array_index(result->ids, ZpcidZpciIds, i).uid, ==, i + 1);
        g_assert_cmpuint(g_array_index(result->ids, ZpcidZpciIds, i).fid, ==, i);
    }
}

static void
test_schema_not_installed(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *saved = g_strdup(g_getenv(ZPCID_ENV_LIBVIRT_SCHEMA_DIR));

    g_setenv(ZPCID_ENV_LIBVIRT_SCHEMA_DIR, "/nonexistent/zpcid-schemas", TRUE);
    g_assert_cmpint(zpcid_domxml_validate("<domain/>", &error), ==,
                    ZPCID_DOMXML_SCHEMA_NOT_INSTALLED);
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_NOT_FOUND);
    if (saved != NULL)
        g_setenv(ZPCID_ENV_LIBVIRT_SCHEMA_DIR, saved, TRUE);
    else
        g_unsetenv(ZPCID_ENV_LIBVIRT_SCHEMA_DIR);
}

static gboolean
schemas_installed(void)
{
    g_autofree char *path = g_build_filename(zpcid_domxml_schema_dir(), "domain.rng", NULL);
    return g_file_test(path, G_FILE_TEST_IS_REGULAR);
}

static void
test_schema_rejects(void)
{
    /* What the RNG catches (libvirt-zpci.md §6.2): uid > 16 bits, unknown attributes, bad
     * hex; a hand-written fragment is checked inside a skeleton domain. */
    static const char *const bad[] = {
        "<hostdev mode='subsystem' type='pci'><source><address domain='0x0005' bus='0x00' "
        "slot='0x00' function='0x0'/></source><address type='pci'><zpci uid='0x10000' "
        "fid='0x1'/></address></hostdev>",
        "<hostdev mode='subsystem' type='pci'><source><address domain='0x0005' bus='0x00' "
        "slot='0x00' function='0x0'/></source><address type='pci'><zpci uid='0x1' fid='0x1' "
        "interpret='on'/></address></hostdev>",
        "<hostdev mode='subsystem' type='pci'><source><address domain='0x0005' bus='0x00' "
        "slot='0x00' function='0x0'/></source><address type='pci'><zpci uid='xyz' "
        "fid='0x1'/></address></hostdev>",
    };

    if (!schemas_installed()) {
        g_test_skip("libvirt's schemas are not installed");
        return;
    }
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        g_assert_cmpint(zpcid_domxml_validate(bad[i], &error), ==, ZPCID_DOMXML_SCHEMA_INVALID);
        g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT);
    }
}

static void
test_metadata_for_attach(void)
{
    /* Attaching to a domain that already has a zpcid record: the record returned for
     * virDomainSetMetadata keeps the other functions and replaces a stale one. */
    static const char xml[] =
        "<domain type='kvm'><name>g</name><metadata><zpcid:passthrough "
        "xmlns:zpcid='" ZPCID_LIBVIRT_METADATA_NS "' version='1'>"
        "<zpcid:function address='0006:00:00.0' host-fid='0x00000012' uid='0x0006' "
        "fid='0x00000012' policy='mirror' interpretation='required'><zpcid:verdict "
        "ok='yes'/></zpcid:function>"
        "<zpcid:function address='0005:00:00.0' host-fid='0x00000011' uid='0x0009' "
        "fid='0x00000009' policy='explicit' interpretation='off'><zpcid:verdict "
        "ok='yes'/></zpcid:function>"
        "</zpcid:passthrough></metadata>"
        "<os><type arch='s390x'>hvm</type></os><devices/></domain>";
    ZpcidDomxmlRequest req = simple_request(ZPCID_ZPCI_POLICY_MIRROR);
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidDomxmlResult) result = zpcid_domxml_build_hostdevs(&req, xml, &error);
    g_autofree char *wrapped = NULL;
    g_autoptr(ZpcidDomxmlInfo) info = NULL;

    g_assert_no_error(error);
    wrapped = g_strdup_printf("<domain><metadata>%s</metadata></domain>", result->metadata);
    info = zpcid_domxml_inspect(wrapped, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(info->intents->len, ==, 2);
    g_assert_cmpuint(g_array_index(info->intents, ZpcidDomxmlIntent, 0).address.domain, ==, 6);
    g_assert_cmpuint(g_array_index(info->intents, ZpcidDomxmlIntent, 1).address.domain, ==, 5);
    g_assert_cmpuint(g_array_index(info->intents, ZpcidDomxmlIntent, 1).ids.uid, ==, 5);
    g_assert_cmpint(g_array_index(info->intents, ZpcidDomxmlIntent, 1).policy, ==,
                    ZPCID_ZPCI_POLICY_MIRROR);
}

int
main(int argc, char **argv)
{
    g_autoptr(GPtrArray) cases = NULL;

    setlocale(LC_ALL, "C.UTF-8");
    g_test_init(&argc, &argv, NULL);
    regenerate = g_strcmp0(g_getenv("ZPCID_TEST_REGENERATE"), "1") == 0;

    cases = golden_list_cases();
    for (guint i = 0; i < cases->len; i++) {
        const char *name = g_ptr_array_index(cases, i);
        g_autofree char *path = g_strdup_printf("/domxml/golden/%s", name);
        g_test_add_data_func(path, name, test_golden);
    }
    g_test_add_func("/domxml/huge-input", test_huge_input);
    g_test_add_func("/domxml/billion-laughs", test_billion_laughs);
    g_test_add_func("/domxml/external-entity", test_external_entity);
    g_test_add_func("/domxml/not-utf8", test_not_utf8);
    g_test_add_func("/domxml/words", test_words);
    g_test_add_func("/domxml/inspect", test_inspect);
    g_test_add_func("/domxml/fragment-auto", test_fragment_without_domain_auto);
    g_test_add_func("/domxml/metadata-for-attach", test_metadata_for_attach);
    g_test_add_func("/domxml/schema/not-installed", test_schema_not_installed);
    g_test_add_func("/domxml/schema/rejects", test_schema_rejects);
    return g_test_run();
}
