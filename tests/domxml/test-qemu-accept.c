/* Acceptance by libvirt's own QEMU driver: every golden output (mirror, auto, explicit; merged,
 * new and fragments put into a domain) is defined with VIR_DOMAIN_DEFINE_VALIDATE in an embedded
 * driver (qemu:///embed?root=DIR) for an s390x guest, and the QEMU command line libvirt builds
 * from it must carry "-device zpci" with our uid/fid and a target that is the vfio-pci device
 * of our host function. Golden cases with naive.xml (what an unchecked tool would write) must
 * be refused by libvirt with the message in libvirt-error.txt, which zpcid pre-empts.
 *
 * The host is not s390x, so domains run with type='qemu' (TCG). The embedded driver refuses to
 * run as root without the libvirt-qemu user, so all libvirt work happens in a child process
 * that drops to "nobody" when started as root. Needs Debian packages qemu-system-misc and
 * libvirt-daemon-driver-qemu; the test is skipped without them. */
#include <errno.h>
#include <ftw.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <grp.h>
#include <json-glib/json-glib.h>
#include <libvirt/libvirt.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <locale.h>
#include <pwd.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "domxml-test-util.h"
#include "domxml.h"
#include "error.h"
#include "virt.h"

#define QEMU_S390X "/usr/bin/qemu-system-s390x"

typedef struct {
    char *id;        /* "accept/<case>" or "refuse/<case>" */
    char *xml;       /* what is defined */
    GPtrArray *expect; /* accept: "SRC uid fid" triples; refuse: the libvirt message */
    char *skip;        /* why this build host cannot check the job */
} Job;

static void
job_free(gpointer data)
{
    Job *job = data;
    g_free(job->id);
    g_free(job->xml);
    g_free(job->skip);
    g_ptr_array_unref(job->expect);
    g_free(job);
}

static GPtrArray *jobs;
static GKeyFile *results;
static char *skip_reason;

/* ---------------------------------------------------------------------------------------- */
/* Preparing the domains (parent)                                                            */

static xmlNodePtr
child_element(xmlNodePtr parent, const char *name)
{
    for (xmlNodePtr c = parent->children; c != NULL; c = c->next) {
        if (c->type == XML_ELEMENT_NODE && g_strcmp0((const char *)c->name, name) == 0)
            return c;
    }
    return NULL;
}

static char *
dump(xmlDocPtr doc)
{
    xmlChar *out = NULL;
    int len = 0;
    char *text;

    xmlDocDumpMemory(doc, &out, &len);
    text = g_strndup((const char *)out, (gsize)len);
    xmlFree(out);
    return text;
}

/* @base with the @fragments added to its devices and type='qemu' (TCG on this build host). */
static char *
prepare_domain(const char *base, GPtrArray *fragments)
{
    xmlDocPtr doc = xmlReadMemory(base, (int)strlen(base), "base.xml", NULL, XML_PARSE_NONET);
    xmlNodePtr root = xmlDocGetRootElement(doc);
    xmlNodePtr devices = child_element(root, "devices");
    char *text;

    g_assert_nonnull(doc);
    xmlSetProp(root, (const xmlChar *)"type", (const xmlChar *)"qemu");
    for (guint i = 0; fragments != NULL && i < fragments->len; i++) {
        const char *frag = g_ptr_array_index(fragments, i);
        xmlDocPtr fdoc = xmlReadMemory(frag, (int)strlen(frag), "hostdev.xml", NULL,
                                       XML_PARSE_NONET);

        g_assert_nonnull(fdoc);
        if (devices == NULL)
            devices = xmlNewChild(root, NULL, (const xmlChar *)"devices", NULL);
        xmlAddChild(devices, xmlDocCopyNode(xmlDocGetRootElement(fdoc), doc, 1));
        xmlFreeDoc(fdoc);
    }
    text = dump(doc);
    xmlFreeDoc(doc);
    return text;
}

static void
add_jobs_for_case(const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GoldenCase) gc = golden_case_load(name, &error);
    g_autoptr(ZpcidDomxmlResult) result = NULL;
    g_autofree char *naive = NULL;

    g_assert_no_error(error);
    result = golden_case_run(gc, &error);
    if (result != NULL) {
        Job *job = g_new0(Job, 1);

        job->id = g_strdup_printf("accept/%s", name);
        job->expect = g_ptr_array_new_with_free_func(g_free);
        if (result->xml != NULL) {
            job->xml = prepare_domain(result->xml, NULL);
        } else {
            g_autofree char *base = NULL;
            g_autofree char *path = g_build_filename(golden_data_dir(), "domains", "guest1.xml",
                                                     NULL);
            if (gc->domain_xml == NULL)
                g_assert_true(g_file_get_contents(path, &base, NULL, NULL));
            job->xml = prepare_domain(gc->domain_xml != NULL ? gc->domain_xml : base,
                                      result->hostdevs);
        }
        {
            g_autoptr(ZpcidDomxmlInfo) info = zpcid_domxml_inspect(job->xml, NULL);
            if (info != NULL && info->secure_execution)
                job->skip = g_strdup("IBM Secure Execution needs QEMU with KVM on s390x");
        }
        for (gsize i = 0; i < gc->request.n_functions; i++) {
            g_autofree char *src = zpcid_pci_address_format(&gc->request.functions[i].address);
            ZpcidZpciIds *ids = &g_array_index(result->ids, ZpcidZpciIds, i);
            g_ptr_array_add(job->expect, g_strdup_printf("%s %u %u", src, ids->uid, ids->fid));
        }
        g_ptr_array_add(jobs, job);
    }
    g_clear_error(&error);

    naive = golden_case_read(gc, "naive.xml");
    if (naive != NULL) {
        Job *job = g_new0(Job, 1);
        g_autofree char *message = golden_case_read(gc, "libvirt-error.txt");

        g_assert_nonnull(message);
        job->id = g_strdup_printf("refuse/%s", name);
        job->xml = prepare_domain(naive, NULL);
        job->expect = g_ptr_array_new_with_free_func(g_free);
        g_ptr_array_add(job->expect, g_strdup(g_strstrip(message)));
        g_ptr_array_add(jobs, job);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* The libvirt side (child)                                                                 */

/* domxml-to-native turns every interface into a tap device it must open, which an
 * unprivileged test cannot; interfaces are dropped for the command line only (define has
 * already reserved their zPCI ids alongside ours). */
static char *
without_interfaces(const char *xml)
{
    xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "defined.xml", NULL, XML_PARSE_NONET);
    xmlNodePtr devices = child_element(xmlDocGetRootElement(doc), "devices");
    char *text;

    for (xmlNodePtr c = devices != NULL ? devices->children : NULL; c != NULL;) {
        xmlNodePtr next = c->next;
        if (c->type == XML_ELEMENT_NODE && g_strcmp0((const char *)c->name, "interface") == 0) {
            xmlUnlinkNode(c);
            xmlFreeNode(c);
        }
        c = next;
    }
    text = dump(doc);
    xmlFreeDoc(doc);
    return text;
}

static int
run_child(const char *tmp)
{
    g_autofree char *root = g_build_filename(tmp, "root", NULL);
    g_autofree char *uri = g_strdup_printf("qemu:///embed?root=%s", root);
    g_autofree char *out_path = g_build_filename(tmp, "results.ini", NULL);
    g_autoptr(GKeyFile) out = g_key_file_new();
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidVirt) virt = NULL;
    g_autofree char *data = NULL;

    /* The embedded driver needs an event implementation registered before it starts. */
    virEventRegisterDefaultImpl();
    virt = zpcid_virt_connect(uri, &error);
    if (virt == NULL) {
        g_key_file_set_string(out, "connect", "error", error->message);
    } else {
        for (guint i = 0; i < jobs->len; i++) {
            Job *job = g_ptr_array_index(jobs, i);
            g_autofree char *defined = NULL, *xml = NULL, *stripped = NULL, *argv = NULL;
            g_autoptr(GError) job_error = NULL;

            if (job->skip != NULL)
                continue;
            defined = zpcid_virt_define(virt, job->xml, &job_error);
            if (defined == NULL) {
                g_key_file_set_string(out, job->id, "error", job_error->message);
                continue;
            }
            g_key_file_set_boolean(out, job->id, "defined", TRUE);
            xml = zpcid_virt_get_domain_xml(virt, defined, TRUE, &job_error);
            if (xml != NULL) {
                g_key_file_set_string(out, job->id, "xml", xml);
                stripped = without_interfaces(xml);
                argv = zpcid_virt_domain_xml_to_native(virt, stripped, &job_error);
            }
            if (argv != NULL)
                g_key_file_set_string(out, job->id, "argv", argv);
            else
                g_key_file_set_string(out, job->id, "error", job_error->message);
            g_clear_error(&job_error);
            if (!zpcid_virt_undefine(virt, defined, &job_error))
                g_key_file_set_string(out, job->id, "undefine-error", job_error->message);
        }
    }
    data = g_key_file_to_data(out, NULL, NULL);
    return g_file_set_contents(out_path, data, -1, NULL) ? 0 : 1;
}

static int
remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static gboolean
chown_entry_uid(const char *path, uid_t uid, gid_t gid)
{
    return chown(path, uid, gid) == 0;
}

/* Runs all jobs in one child (one driver start, one capabilities probe). */
static void
run_jobs(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *tmp = g_dir_make_tmp("zpcid-qemu-XXXXXX", &error);
    g_autofree char *root = NULL, *home = NULL, *out_path = NULL;
    struct passwd *nobody = NULL;
    pid_t pid;
    int status = 0;

    g_assert_no_error(error);
    root = g_build_filename(tmp, "root", NULL);
    home = g_build_filename(tmp, "home", NULL);
    out_path = g_build_filename(tmp, "results.ini", NULL);
    g_assert_cmpint(g_mkdir(root, 0700), ==, 0);
    g_assert_cmpint(g_mkdir(home, 0700), ==, 0);
    if (geteuid() == 0) {
        nobody = getpwnam("nobody");
        g_assert_nonnull(nobody);
        g_assert_true(chown_entry_uid(tmp, nobody->pw_uid, nobody->pw_gid));
        g_assert_true(chown_entry_uid(root, nobody->pw_uid, nobody->pw_gid));
        g_assert_true(chown_entry_uid(home, nobody->pw_uid, nobody->pw_gid));
    }

    fflush(stdout);
    fflush(stderr);
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        /* As root the embedded driver wants the libvirt-qemu user; as nobody it runs all of
         * QEMU's state below the root directory and $HOME. */
        if (nobody != NULL &&
            (setgroups(0, NULL) != 0 || setgid(nobody->pw_gid) != 0 ||
             setuid(nobody->pw_uid) != 0))
            _exit(3);
        g_setenv("HOME", home, TRUE);
        g_setenv("XDG_CACHE_HOME", home, TRUE);
        g_setenv("XDG_CONFIG_HOME", home, TRUE);
        g_setenv("XDG_RUNTIME_DIR", home, TRUE);
        g_setenv("LIBVIRT_LOG_OUTPUTS", "1:file:/dev/null", TRUE);
        _exit(run_child(tmp));
    }
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    results = g_key_file_new();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        !g_key_file_load_from_file(results, out_path, G_KEY_FILE_NONE, NULL)) {
        skip_reason = g_strdup_printf("the libvirt child process failed (status %d)", status);
    } else if (g_key_file_has_group(results, "connect")) {
        g_autofree char *message = g_key_file_get_string(results, "connect", "error", NULL);
        /* Only a missing driver is a reason to skip; anything else is a failure. */
        if (strstr(message, "no connection driver available") != NULL ||
            strstr(message, "Failed to load module") != NULL)
            skip_reason = g_strdup_printf("libvirt's QEMU driver is not installed (Debian: "
                                          "libvirt-daemon-driver-qemu): %s",
                                          message);
        else
            g_error("could not start the embedded QEMU driver: %s", message);
    }
    nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---------------------------------------------------------------------------------------- */
/* Checking the command line (parent)                                                        */

/* "-device" arguments as key/value tables: QEMU 7.2 takes JSON, older libvirt/QEMU keyval. */
static GPtrArray *
parse_devices(const char *cmdline)
{
    g_auto(GStrv) argv = NULL;
    g_autoptr(GError) error = NULL;
    GPtrArray *devices = g_ptr_array_new_with_free_func((GDestroyNotify)g_hash_table_unref);

    g_assert_true(g_shell_parse_argv(cmdline, NULL, &argv, &error));
    for (guint i = 0; argv[i] != NULL && argv[i + 1] != NULL; i++) {
        GHashTable *dev;
        const char *arg = argv[i + 1];

        if (strcmp(argv[i], "-device") != 0)
            continue;
        dev = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        if (arg[0] == '{') {
            g_autoptr(JsonParser) parser = json_parser_new();
            JsonObject *obj;
            g_autoptr(GList) members = NULL;

            g_assert_true(json_parser_load_from_data(parser, arg, -1, &error));
            obj = json_node_get_object(json_parser_get_root(parser));
            members = json_object_get_members(obj);
            for (GList *m = members; m != NULL; m = m->next) {
                JsonNode *node = json_object_get_member(obj, m->data);
                char *value = JSON_NODE_HOLDS_VALUE(node) &&
                                      json_node_get_value_type(node) == G_TYPE_INT64
                                  ? g_strdup_printf("%" G_GINT64_FORMAT, json_node_get_int(node))
                                  : g_strdup(json_node_get_string(node));
                g_hash_table_insert(dev, g_strdup(m->data), value);
            }
        } else {
            g_auto(GStrv) parts = g_strsplit(arg, ",", -1);
            g_hash_table_insert(dev, g_strdup("driver"), g_strdup(parts[0]));
            for (guint j = 1; parts[j] != NULL; j++) {
                g_auto(GStrv) kv = g_strsplit(parts[j], "=", 2);
                if (kv[1] != NULL)
                    g_hash_table_insert(dev, g_strdup(kv[0]), g_strdup(kv[1]));
            }
        }
        g_ptr_array_add(devices, dev);
    }
    return devices;
}

static void
test_accept(gconstpointer data)
{
    const Job *job = data;
    g_autofree char *error = NULL, *argv = NULL;
    g_autoptr(GPtrArray) devices = NULL;

    if (skip_reason != NULL || job->skip != NULL) {
        g_test_skip(skip_reason != NULL ? skip_reason : job->skip);
        return;
    }
    error = g_key_file_get_string(results, job->id, "error", NULL);
    if (error != NULL)
        g_error("%s: libvirt's QEMU driver refused our XML: %s\n%s", job->id, error, job->xml);
    argv = g_key_file_get_string(results, job->id, "argv", NULL);
    g_assert_nonnull(argv);
    devices = parse_devices(argv);

    for (guint i = 0; i < job->expect->len; i++) {
        g_auto(GStrv) want = g_strsplit(g_ptr_array_index(job->expect, i), " ", 3);
        gboolean found = FALSE;

        for (guint d = 1; d < devices->len && !found; d++) {
            GHashTable *vfio = g_ptr_array_index(devices, d);
            GHashTable *zpci = g_ptr_array_index(devices, d - 1);

            if (g_strcmp0(g_hash_table_lookup(vfio, "driver"), "vfio-pci") != 0 ||
                g_strcmp0(g_hash_table_lookup(vfio, "host"), want[0]) != 0)
                continue;
            /* libvirt puts the zpci device right before its target. */
            g_assert_cmpstr(g_hash_table_lookup(zpci, "driver"), ==, "zpci");
            g_assert_cmpstr(g_hash_table_lookup(zpci, "target"), ==,
                            g_hash_table_lookup(vfio, "id"));
            g_assert_cmpstr(g_hash_table_lookup(zpci, "uid"), ==, want[1]);
            g_assert_cmpstr(g_hash_table_lookup(zpci, "fid"), ==, want[2]);
            found = TRUE;
        }
        if (!found)
            g_error("%s: no vfio-pci device for %s in: %s", job->id, want[0], argv);
    }
}

static void
test_refuse(gconstpointer data)
{
    const Job *job = data;
    g_autofree char *error = NULL;
    const char *expected = g_ptr_array_index(job->expect, 0);

    if (skip_reason != NULL) {
        g_test_skip(skip_reason);
        return;
    }
    error = g_key_file_get_string(results, job->id, "error", NULL);
    if (error == NULL)
        g_error("%s: libvirt accepted the naive XML, expected “%s”", job->id, expected);
    /* The message is libvirt's, carried through our GError unchanged. */
    if (strstr(error, expected) == NULL)
        g_error("%s: libvirt said “%s”, expected “%s”", job->id, error, expected);
    g_assert_true(g_str_has_prefix(error, "libvirt refused to define the domain"));
}

int
main(int argc, char **argv)
{
    g_autoptr(GPtrArray) cases = NULL;

    setlocale(LC_ALL, "C.UTF-8");
    g_test_init(&argc, &argv, NULL);

    jobs = g_ptr_array_new_with_free_func(job_free);
    cases = golden_list_cases();
    for (guint i = 0; i < cases->len; i++)
        add_jobs_for_case(g_ptr_array_index(cases, i));

    if (!g_file_test(QEMU_S390X, G_FILE_TEST_IS_EXECUTABLE))
        skip_reason = g_strdup(QEMU_S390X " is not installed (Debian: qemu-system-misc)");
    else
        run_jobs();

    for (guint i = 0; i < jobs->len; i++) {
        Job *job = g_ptr_array_index(jobs, i);
        g_autofree char *path = g_strdup_printf("/qemu/%s", job->id);
        g_test_add_data_func(path, job,
                             g_str_has_prefix(job->id, "accept/") ? test_accept : test_refuse);
    }
    return g_test_run();
}
