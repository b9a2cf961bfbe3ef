/* Hostile domain XML as a caller of MergeDomainXml / BuildHostdevXml could send it: malformed,
 * huge, entity expansion, external entities and DTDs, XInclude, foreign namespaces and other
 * architectures. Each must be refused (or, for foreign elements, ignored) with a typed error,
 * quickly, and without libxml2 opening anything. */
#include <glib.h>
#include <glib/gstdio.h>
#include <libxml/parser.h>
#include <libxml/xmlIO.h>
#include <locale.h>
#include <string.h>

#include "domxml.h"
#include "error.h"

/* ---------------------------------------------------------------------------------------- */
/* Watching libxml2's I/O                                                                  */

/* Every URI libxml2 tried to open (input callbacks) or to load as an entity or DTD. */
static GPtrArray *opened;

/* Registered last, this matcher is asked first about every URI libxml2 opens; it only
 * records and declines, so libxml2's own handlers still behave as they would. */
static int
spy_match(const char *uri)
{
    g_ptr_array_add(opened, g_strdup(uri != NULL ? uri : "(null)"));
    return 0;
}

static void *
spy_open(const char *uri)
{
    (void)uri;
    return NULL;
}

static int
spy_read(void *context, char *buffer, int len)
{
    (void)context;
    (void)buffer;
    (void)len;
    return -1;
}

static int
spy_close(void *context)
{
    (void)context;
    return 0;
}

static xmlExternalEntityLoader default_loader;

static xmlParserInputPtr
spy_loader(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
    g_ptr_array_add(opened, g_strdup_printf("entity:%s", url != NULL ? url : "(null)"));
    return default_loader(url, id, ctxt);
}

/* A file outside the documents whose content must never show up anywhere. */
static char *secret_path;
static const char secret[] = "zpcid-secret-7c1e0f";

static void
assert_refused(GError *error, gint code, const char *fragment)
{
    g_assert_nonnull(error);
    g_assert_true(error->domain == ZPCID_ERROR);
    if (error->code != code)
        g_error("expected %s code %d, got %d: %s", fragment, code, error->code, error->message);
    if (fragment != NULL && strstr(error->message, fragment) == NULL)
        g_error("“%s” is not in the error: %s", fragment, error->message);
    g_assert_true(g_utf8_validate(error->message, -1, NULL));
    g_assert_null(strstr(error->message, secret));
    g_assert_null(strstr(error->message, "root:"));
}

static const ZpcidDomxmlFunction fixture_function = {
    .address = {.domain = 0x5, .bus = 0, .slot = 0, .function = 0},
    .fid = 0x11,
    .uid = 0x5,
    .uid_known = TRUE,
    .uid_checking = TRUE,
    .managed = TRUE,
};

static ZpcidDomxmlRequest
fixture_request(void)
{
    ZpcidDomxmlRequest req = {
        .functions = &fixture_function,
        .n_functions = 1,
        .policy = ZPCID_ZPCI_POLICY_AUTO,
        .interpretation = ZPCID_INTERPRETATION_PREFERRED,
        .verdict = {.ok = TRUE},
    };
    return req;
}

/* Runs @xml through every entry point that takes a domain from outside and checks that each
 * refuses it with @code and @fragment, within a second, without any I/O by libxml2. */
static void
assert_all_refuse(const char *xml, gint code, const char *fragment)
{
    ZpcidDomxmlRequest req = fixture_request();
    gint64 start = g_get_monotonic_time();

    g_ptr_array_set_size(opened, 0);
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(ZpcidDomxmlResult) result = zpcid_domxml_merge(&req, xml, &error);
        g_assert_null(result);
        assert_refused(error, code, fragment);
    }
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(ZpcidDomxmlResult) result = zpcid_domxml_build_hostdevs(&req, xml, &error);
        g_assert_null(result);
        assert_refused(error, code, fragment);
    }
    if (code != ZPCID_ERROR_UNSUPPORTED) {
        /* inspect reads any domain; only the generators care about the architecture. */
        g_autoptr(GError) error = NULL;
        g_autoptr(ZpcidDomxmlInfo) info = zpcid_domxml_inspect(xml, &error);
        g_assert_null(info);
        assert_refused(error, code, fragment);
    }
    for (guint i = 0; i < opened->len; i++)
        g_test_message("libxml2 opened “%s”", (const char *)g_ptr_array_index(opened, i));
    g_assert_cmpuint(opened->len, ==, 0);
    g_assert_cmpint(g_get_monotonic_time() - start, <, G_USEC_PER_SEC);
}

/* ---------------------------------------------------------------------------------------- */

/* The spy must see what an unsafe parse would open, or the tests below could not fail. */
static void
test_spy_sees_unsafe_parse(void)
{
    g_autofree char *xml = g_strdup_printf("<!DOCTYPE d [<!ENTITY e SYSTEM \"file://%s\">]>"
                                           "<d>&e;</d>",
                                           secret_path);
    xmlDocPtr doc;
    xmlChar *content;

    g_ptr_array_set_size(opened, 0);
    doc = xmlReadMemory(xml, (int)strlen(xml), "unsafe.xml", NULL,
                        XML_PARSE_NOENT | XML_PARSE_DTDLOAD | XML_PARSE_NOERROR |
                            XML_PARSE_NOWARNING);
    g_assert_nonnull(doc);
    content = xmlNodeGetContent(xmlDocGetRootElement(doc));
    g_assert_nonnull(strstr((const char *)content, secret));
    xmlFree(content);
    xmlFreeDoc(doc);
    g_assert_cmpuint(opened->len, >, 0);
}

static void
test_malformed(void)
{
    static const char *const docs[] = {
        "",
        " ",
        "<domain",
        "<domain type='kvm'><name>g</name>",
        "<domain type='kvm'><name>g</nam></domain>",
        "<domain type='kvm'><name>g</name></domain><domain/>",
        "<domain type='kvm' type='qemu'><name>g</name></domain>",
        "<domain type=kvm><name>g</name></domain>",
        "<domain><name>&#0;</name></domain>",
        "<domain><name>&#x110000;</name></domain>",
        "<domain><name>&unknown;</name></domain>",
        "<domain><name>a & b</name></domain>",
        "<domain><name><![CDATA[x</name></domain>",
        "<domain><!-- unterminated </domain>",
        "<domain><name>g</name></domain>\n<?pi",
        "text before <domain/>",
        "<?xml version='1.0' encoding='ISO-8859-1'?><domain/>\xff",
        "<domain><name>\x01</name></domain>",
        "<a:domain xmlns:a=''/>",
        /* Not namespace-well-formed: an empty prefix binding, an unbound prefix. */
        "<domain xmlns:zpcid='x'><zpcid:passthrough xmlns:zpcid=''/></domain>",
        ("<domain type='kvm'><name>g</name><os><type arch='s390x'>hvm</type></os><devices>"
         "<f:hostdev mode='subsystem' type='pci'/></devices></domain>"),
    };

    for (guint i = 0; i < G_N_ELEMENTS(docs); i++) {
        g_autofree char *shown = g_strescape(docs[i], NULL);

        g_test_message("document %u: %s", i, shown);
        assert_all_refuse(docs[i], ZPCID_ERROR_INVALID_ARGUMENT, NULL);
    }
}

static void
test_deep_nesting(void)
{
    /* Far deeper than libxml2's default depth limit (256): refused, no stack exhaustion. */
    g_autoptr(GString) doc = g_string_new("<domain type='kvm'><name>g</name><description>");

    for (guint i = 0; i < 100000; i++)
        g_string_append(doc, "<a>");
    for (guint i = 0; i < 100000; i++)
        g_string_append(doc, "</a>");
    g_string_append(doc, "</description><os><type arch='s390x'>hvm</type></os><devices/></domain>");
    assert_all_refuse(doc->str, ZPCID_ERROR_INVALID_ARGUMENT, "depth");
}

static void
test_huge_10mb(void)
{
    g_autoptr(GString) doc = g_string_sized_new(10 * 1024 * 1024 + 64);

    g_string_append(doc, "<domain type='kvm'><name>g</name><description>");
    while (doc->len < 10 * 1024 * 1024)
        g_string_append(doc, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n");
    g_string_append(doc, "</description><os><type arch='s390x'>hvm</type></os><devices/></domain>");
    assert_all_refuse(doc->str, ZPCID_ERROR_INVALID_ARGUMENT, "larger than the limit");
}

static void
test_entity_expansion(void)
{
    /* Billion laughs (ten levels of ten), the quadratic blowup (one large entity used many
     * times) and a parameter entity chain: refused before any declaration is read. */
    g_autoptr(GString) laughs = g_string_new("<?xml version='1.0'?>\n<!DOCTYPE domain [\n"
                                             " <!ENTITY lol0 'lol'>\n");
    g_autoptr(GString) quadratic = g_string_new("<!DOCTYPE domain [<!ENTITY big '");
    static const char parameter[] = "<!DOCTYPE domain [<!ENTITY % p1 '<!ENTITY x \"y\">'> %p1;]>"
                                    "<domain type='kvm'><name>&x;</name></domain>";

    for (guint level = 1; level <= 9; level++) {
        g_string_append_printf(laughs, " <!ENTITY lol%u '", level);
        for (guint i = 0; i < 10; i++)
            g_string_append_printf(laughs, "&lol%u;", level - 1);
        g_string_append(laughs, "'>\n");
    }
    g_string_append(laughs, "]>\n<domain type='kvm'><name>&lol9;</name><devices/></domain>\n");
    for (guint i = 0; i < 50000; i++)
        g_string_append_c(quadratic, 'x');
    g_string_append(quadratic, "'>]><domain type='kvm'><name>g</name><description>");
    for (guint i = 0; i < 10000; i++)
        g_string_append(quadratic, "&big;");
    g_string_append(quadratic, "</description><devices/></domain>");

    assert_all_refuse(laughs->str, ZPCID_ERROR_INVALID_ARGUMENT, "document type declaration");
    assert_all_refuse(quadratic->str, ZPCID_ERROR_INVALID_ARGUMENT, "document type declaration");
    assert_all_refuse(parameter, ZPCID_ERROR_INVALID_ARGUMENT, "document type declaration");
}

static void
test_external_entities(void)
{
    g_autofree char *secret_entity = g_strdup_printf(
        "<!DOCTYPE domain [<!ENTITY xxe SYSTEM \"file://%s\">]>"
        "<domain type='kvm'><name>&xxe;</name><os><type arch='s390x'>hvm</type></os>"
        "<devices/></domain>",
        secret_path);
    const char *const docs[] = {
        secret_entity,
        "<?xml version='1.0'?>\n<!DOCTYPE domain [<!ENTITY xxe SYSTEM "
        "\"file:///etc/passwd\">]>\n<domain type='kvm'><name>&xxe;</name><devices/></domain>",
        "<!DOCTYPE domain [<!ENTITY xxe SYSTEM \"/etc/passwd\">]><domain>&xxe;</domain>",
        "<!DOCTYPE domain [<!ENTITY xxe SYSTEM \"http://127.0.0.1:9/x\">]><domain>&xxe;</domain>",
        "<!DOCTYPE domain [<!ENTITY % dtd SYSTEM \"file:///etc/passwd\"> %dtd;]><domain/>",
        "<!DOCTYPE domain [<!ENTITY pic SYSTEM \"file:///etc/passwd\" NDATA gif>]>"
        "<domain><name>g</name></domain>",
    };

    for (guint i = 0; i < G_N_ELEMENTS(docs); i++)
        assert_all_refuse(docs[i], ZPCID_ERROR_INVALID_ARGUMENT, "document type declaration");
}

static void
test_dtds(void)
{
    g_autofree char *external_secret = g_strdup_printf(
        "<!DOCTYPE domain SYSTEM \"file://%s\"><domain type='kvm'><name>g</name></domain>",
        secret_path);
    const char *const docs[] = {
        /* An empty internal subset is still a DTD. */
        "<!DOCTYPE domain><domain type='kvm'><name>g</name></domain>",
        "<!DOCTYPE domain []><domain type='kvm'><name>g</name></domain>",
        /* Default attributes would change the document if the DTD were applied. */
        "<!DOCTYPE domain [<!ATTLIST hostdev managed CDATA 'no'>]>"
        "<domain type='kvm'><name>g</name><devices/></domain>",
        external_secret,
        "<!DOCTYPE domain SYSTEM \"file:///etc/passwd\"><domain type='kvm'/>",
        "<!DOCTYPE domain PUBLIC \"-//zpcid//test//EN\" \"http://127.0.0.1:9/domain.dtd\">"
        "<domain type='kvm'/>",
        /* After a comment and a processing instruction, where a scanner might stop looking. */
        "<?xml version='1.0'?><!-- c --><?pi x?>\n<!DOCTYPE domain SYSTEM \"/etc/passwd\">"
        "<domain type='kvm'/>",
    };

    for (guint i = 0; i < G_N_ELEMENTS(docs); i++)
        assert_all_refuse(docs[i], ZPCID_ERROR_INVALID_ARGUMENT, "document type declaration");
}

static void
test_xinclude(void)
{
    /* XInclude is not processed (no XML_PARSE_XINCLUDE): the element stays an unknown foreign
     * element, nothing is read, and the merge keeps it as it keeps every byte not its own. */
    static const char xml[] =
        "<domain type='kvm' xmlns:xi='http://www.w3.org/2001/XInclude'><name>g</name>"
        "<os><type arch='s390x'>hvm</type></os><devices>"
        "<xi:include href='file:///etc/passwd' parse='text'/></devices></domain>";
    ZpcidDomxmlRequest req = fixture_request();
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidDomxmlResult) result = NULL;

    g_ptr_array_set_size(opened, 0);
    result = zpcid_domxml_merge(&req, xml, &error);
    g_assert_no_error(error);
    g_assert_nonnull(strstr(result->xml, "<xi:include href='file:///etc/passwd' parse='text'/>"));
    g_assert_null(strstr(result->xml, "root:"));
    g_assert_cmpuint(opened->len, ==, 0);
}

static void
test_namespaces(void)
{
    /* A hostdev, source or zpci element in another namespace is not libvirt's: it neither
     * counts as a used function nor blocks one; a domain root in a namespace is no domain. */
    static const char foreign[] =
        "<domain type='kvm' xmlns:f='https://example.org/foreign'><name>g</name>"
        "<os><type arch='s390x'>hvm</type></os><devices>"
        "<f:hostdev mode='subsystem' type='pci'><f:source><f:address domain='0x0005' "
        "bus='0x00' slot='0x00' function='0x0'/></f:source></f:hostdev>"
        "<hostdev mode='subsystem' type='pci' xmlns='https://example.org/other'><source>"
        "<address domain='0x0005' bus='0x00' slot='0x00' function='0x0'/></source>"
        "</hostdev>"
        "<disk type='file' device='disk'><target dev='vda'/><address type='pci'>"
        "<f:zpci uid='0x1' fid='0x0'/></address></disk>"
        "</devices></domain>";
    static const char no_namespace[] =
        "<domain type='kvm' xmlns:f='https://example.org/foreign'><name>g</name>"
        "<os><type arch='s390x'>hvm</type></os><devices>"
        "<f:wrap><hostdev xmlns='' mode='subsystem' type='pci'/></f:wrap>"
        "<hostdev xmlns='' mode='subsystem' type='pci'><source><address domain='0x0005' "
        "bus='0x00' slot='0x00' function='0x0'/></source></hostdev>"
        "</devices></domain>";
    ZpcidPciAddress used = fixture_function.address;
    ZpcidDomxmlRequest req = fixture_request();
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidDomxmlInfo) info = zpcid_domxml_inspect(foreign, &error);
    g_autoptr(ZpcidDomxmlResult) result = NULL;

    g_assert_no_error(error);
    g_assert_cmpuint(info->sources->len, ==, 0);
    g_assert_cmpuint(info->zpci->len, ==, 0);
    result = zpcid_domxml_merge(&req, foreign, &error);
    g_assert_no_error(error);
    /* The foreign zpci does not take uid 1 / fid 0. */
    g_assert_cmpuint(g_array_index(result->ids, ZpcidZpciIds, 0).uid, ==, 1);
    g_assert_cmpuint(g_array_index(result->ids, ZpcidZpciIds, 0).fid, ==, 0);
    g_clear_pointer(&info, zpcid_domxml_info_free);
    info = zpcid_domxml_inspect(result->xml, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(info->sources->len, ==, 1);

    /* xmlns='' puts an element back into no namespace: that one is libvirt's and ours. */
    g_clear_pointer(&info, zpcid_domxml_info_free);
    g_clear_pointer(&result, zpcid_domxml_result_free);
    info = zpcid_domxml_inspect(no_namespace, &error);
    g_assert_no_error(error);
    g_assert_true(zpcid_domxml_info_uses(info, &used));
    result = zpcid_domxml_merge(&req, no_namespace, &error);
    g_assert_null(result);
    assert_refused(error, ZPCID_ERROR_CONFLICT, NULL);
    g_clear_error(&error);

    assert_all_refuse("<domain xmlns='https://example.org/foreign' type='kvm'><name>g</name>"
                      "</domain>",
                      ZPCID_ERROR_INVALID_ARGUMENT, "domain");
    assert_all_refuse("<l:domain xmlns:l='http://libvirt.org/schemas/domain' type='kvm'>"
                      "<l:name>g</l:name></l:domain>",
                      ZPCID_ERROR_INVALID_ARGUMENT, "domain");
}

static void
test_other_architectures(void)
{
    static const char *const docs[] = {
        "<domain type='kvm'><name>g</name><os><type arch='x86_64' machine='pc-q35-7.2'>hvm"
        "</type></os><devices/></domain>",
        "<domain type='kvm'><name>g</name><os><type arch='aarch64' machine='virt'>hvm</type>"
        "</os><devices/></domain>",
        "<domain type='kvm'><name>g</name><os><type arch='s390'>hvm</type></os><devices/>"
        "</domain>",
        "<domain type='kvm'><name>g</name><os><type arch='S390X'>hvm</type></os><devices/>"
        "</domain>",
        "<domain type='kvm'><name>g</name><os><type arch=''>hvm</type></os><devices/></domain>",
        "<domain type='kvm'><name>g</name><os><type machine='pc-i440fx-7.2'>hvm</type></os>"
        "<devices/></domain>",
    };

    for (guint i = 0; i < G_N_ELEMENTS(docs); i++) {
        g_test_message("document %u: %s", i, docs[i]);
        assert_all_refuse(docs[i], ZPCID_ERROR_UNSUPPORTED, "s390x");
    }
}

int
main(int argc, char **argv)
{
    g_autofree char *dir = NULL;
    int status;

    setlocale(LC_ALL, "C.UTF-8");
    g_test_init(&argc, &argv, NULL);
    opened = g_ptr_array_new_with_free_func(g_free);
    xmlInitParser();
    g_assert_cmpint(xmlRegisterInputCallbacks(spy_match, spy_open, spy_read, spy_close), >=, 0);
    default_loader = xmlGetExternalEntityLoader();
    xmlSetExternalEntityLoader(spy_loader);

    dir = g_dir_make_tmp("zpcid-domxml-hostile-XXXXXX", NULL);
    g_assert_nonnull(dir);
    secret_path = g_build_filename(dir, "secret", NULL);
    g_assert_true(g_file_set_contents(secret_path, secret, -1, NULL));

    g_test_add_func("/domxml-hostile/spy-sees-unsafe-parse", test_spy_sees_unsafe_parse);
    g_test_add_func("/domxml-hostile/malformed", test_malformed);
    g_test_add_func("/domxml-hostile/deep-nesting", test_deep_nesting);
    g_test_add_func("/domxml-hostile/huge-10mb", test_huge_10mb);
    g_test_add_func("/domxml-hostile/entity-expansion", test_entity_expansion);
    g_test_add_func("/domxml-hostile/external-entities", test_external_entities);
    g_test_add_func("/domxml-hostile/dtds", test_dtds);
    g_test_add_func("/domxml-hostile/xinclude", test_xinclude);
    g_test_add_func("/domxml-hostile/namespaces", test_namespaces);
    g_test_add_func("/domxml-hostile/other-architectures", test_other_architectures);
    status = g_test_run();

    (void)g_unlink(secret_path);
    (void)g_rmdir(dir);
    g_free(secret_path);
    g_ptr_array_unref(opened);
    xmlCleanupParser();
    return status;
}
