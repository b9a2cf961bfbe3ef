/* Hostile D-Bus input: a table-driven corpus of calls to every method, property and option of
 * xml/org.zpcid1.xml with wrong signatures, empty, huge and hostile strings, unknown options,
 * duplicated specs and thousands of specs in one call. Every call must end in the expected
 * typed error with a message that names the bad value, zpcid must answer a Ping after each,
 * and afterwards the host tree and the state directory must be unchanged, entry by entry.
 *
 * Errors named org.freedesktop.DBus.Error.* come from GDBus (signature mismatches, unknown
 * properties) or from the bus (policy) before zpcid's code runs; see docs/robustness.md. */
#include <glib.h>
#include <string.h>

#include "dbus-fixture.h"
#include "zpcid-names.h"

#define DBUS_INVALID_ARGS   "org.freedesktop.DBus.Error.InvalidArgs"
#define DBUS_UNKNOWN_METHOD "org.freedesktop.DBus.Error.UnknownMethod"
#define DBUS_UNKNOWN_OBJECT "org.freedesktop.DBus.Error.UnknownObject"
#define DBUS_ACCESS_DENIED  "org.freedesktop.DBus.Error.AccessDenied"
#define ERR_NOT_FOUND       ZPCID_DBUS_ERROR_NOT_FOUND
#define ERR_UNSUPPORTED     ZPCID_DBUS_ERROR_UNSUPPORTED

#define HUGE_LEN 4096
#define MANY     5000

typedef struct {
    char *label;
    char *path; /* NULL: the function object of ADDR_IDLE_NVME */
    const char *iface;
    const char *method;
    GVariant *params; /* NULL: no arguments */
    const char *error;
    char *needle; /* must appear in the message; NULL: not checked (GDBus and bus errors) */
} HostileCall;

static void
hostile_call_free(HostileCall *c)
{
    g_free(c->label);
    g_free(c->path);
    g_clear_pointer(&c->params, g_variant_unref);
    g_free(c->needle);
    g_free(c);
}

/* How zpcid quotes caller text in messages (src/spec.c): at most 64 bytes, escaped. */
static char *
quoted(const char *text)
{
    g_autofree char *cut = g_utf8_make_valid(text, MIN(strlen(text), 64));
    return g_strescape(cut, NULL);
}

static void
add(GPtrArray *corpus, const char *label, const char *path, const char *iface, const char *method,
    GVariant *params, const char *error, const char *needle)
{
    HostileCall *c = g_new0(HostileCall, 1);

    c->label = g_strdup(label);
    c->path = g_strdup(path);
    c->iface = iface;
    c->method = method;
    c->params = params != NULL ? g_variant_ref_sink(params) : NULL;
    c->error = error;
    c->needle = g_strdup(needle);
    g_ptr_array_add(corpus, c);
}

static char *
huge(char c, gsize len)
{
    char *s = g_malloc(len + 1);

    memset(s, c, len);
    s[len] = '\0';
    return s;
}

/* ---- the corpus ---- */

typedef struct {
    const char *spec;
    const char *error;
    const char *needle; /* NULL: the spec as zpcid quotes it */
} BadSpec;

static const BadSpec bad_specs[] = {
    {"", ERR_INVALID, NULL},
    {"../../..", ERR_INVALID, NULL},
    {"0005:00:00.0/../..", ERR_INVALID, NULL},
    {"../../../sys/bus/pci/devices/000a:00:00.0", ERR_INVALID, NULL},
    {"000a:00:00.0\n", ERR_INVALID, NULL},
    {"000a:00:00.0\nuid:0x1", ERR_INVALID, NULL},
    {"\n", ERR_INVALID, NULL},
    {" 0x1", ERR_INVALID, NULL},
    {"0x1 ", ERR_INVALID, NULL},
    {"\t0005:00:00.0", ERR_INVALID, NULL},
    {"uid:0", ERR_INVALID, "“0”"},
    {"uid:0x0", ERR_INVALID, "“0x0”"},
    {"uid:0x10000", ERR_INVALID, "0x10000"},
    {"uid:65536", ERR_INVALID, "65536"},
    {"uid:-1", ERR_INVALID, "-1"},
    {"uid:", ERR_INVALID, "“”"},
    {"uid:0010", ERR_INVALID, "0010"},
    {"0010", ERR_INVALID, NULL},
    {"007", ERR_INVALID, NULL},
    {"fid:", ERR_INVALID, "“”"},
    {"fid:0x", ERR_INVALID, "0x"},
    {"fid:zz", ERR_INVALID, "zz"},
    {"0x100000000", ERR_INVALID, NULL},
    {"18446744073709551616", ERR_INVALID, NULL},
    {"0x", ERR_INVALID, NULL},
    {"-1", ERR_INVALID, NULL},
    {"%s%s%s%n", ERR_INVALID, NULL},
    {"*", ERR_INVALID, NULL},
    {"fid:0x1822,0x1823", ERR_INVALID, "0x1822,0x1823"},
    {"0005:00:00", ERR_INVALID, NULL},
    {"0001:00:00.8", ERR_INVALID, NULL},
    {"0001:00:20.0", ERR_INVALID, NULL},
    {"0001:100:00.0", ERR_INVALID, NULL},
    {"gggg:00:00.0", ERR_INVALID, NULL},
    {"Ünïcödé", ERR_INVALID, NULL},
    {"\xef\xbf\xbd", ERR_INVALID, NULL},
    /* Well formed, but nothing on this host has them. */
    {"0xdeadbeef", ERR_NOT_FOUND, "0xdeadbeef"},
    {"fid:0xffffffff", ERR_NOT_FOUND, "0xffffffff"},
    {"uid:0xffff", ERR_NOT_FOUND, "0xffff"},
    {"ffff:ff:1f.7", ERR_NOT_FOUND, "ffff:ff:1f.7"},
    {"0000:00:00.0", ERR_NOT_FOUND, "0000:00:00.0"},
};

/* Every method that takes specs, called with @specs (and nothing else wrong). */
static void
add_spec_calls(GPtrArray *corpus, const char *label, const char *const *specs, const char *error,
               const char *needle)
{
    struct {
        const char *method;
        gboolean with_domain;
    } methods[] = {
        {"Bind", FALSE},          {"Unbind", FALSE},          {"GetDomainXml", FALSE},
        {"AttachToDomain", TRUE}, {"DetachFromDomain", TRUE},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(methods); i++) {
        g_autofree char *l = g_strdup_printf("%s(%s)", methods[i].method, label);
        GVariant *params = methods[i].with_domain
                               ? g_variant_new("(s^asa{sv})", "zpcid-guest", specs, NULL)
                               : g_variant_new("(^asa{sv})", specs, NULL);
        add(corpus, l, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, methods[i].method, params, error,
            needle);
    }
}

static void
add_bad_specs(GPtrArray *corpus)
{
    for (gsize i = 0; i < G_N_ELEMENTS(bad_specs); i++) {
        const BadSpec *b = &bad_specs[i];
        const char *specs[] = {ADDR_IDLE_NVME, b->spec, NULL};
        g_autofree char *needle = b->needle != NULL ? g_strdup(b->needle) : quoted(b->spec);
        g_autofree char *label = g_strescape(b->spec, NULL);

        add(corpus, label, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "ResolveFunction",
            g_variant_new("(sa{sv})", b->spec, NULL), b->error, needle);
        /* Behind a good spec, so that a transaction would have started with that one. */
        add_spec_calls(corpus, label, specs, b->error, needle);
    }
}

/* 4 KiB specs, thousands of specs, duplicates. */
static void
add_big_specs(GPtrArray *corpus)
{
    g_autofree char *fs = huge('f', HUGE_LEN);
    g_autofree char *ones = huge('1', HUGE_LEN);
    g_autofree char *zeros = huge('0', HUGE_LEN);
    g_autofree char *long_hex = g_strconcat("0x", fs, NULL);
    g_autofree char *long_uid = g_strconcat("uid:", ones, NULL);
    g_autofree char *long_addr = g_strconcat(zeros, ":00:00.0", NULL);
    g_autofree char *megabyte = huge('A', 1024 * 1024);
    const char *longs[] = {long_hex, long_uid, long_addr, megabyte};
    g_autoptr(GStrvBuilder) same = g_strv_builder_new();
    g_autoptr(GStrvBuilder) absent = g_strv_builder_new();
    g_autoptr(GStrvBuilder) broken = g_strv_builder_new();
    g_auto(GStrv) same_v = NULL;
    g_auto(GStrv) absent_v = NULL;
    g_auto(GStrv) broken_v = NULL;
    const char *twice[] = {ADDR_IDLE_NVME, ADDR_IDLE_NVME, NULL};
    const char *aliases[] = {ADDR_IDLE_NVME, "uid:0xa", NULL};
    const char *none[] = {NULL};

    for (gsize i = 0; i < G_N_ELEMENTS(longs); i++) {
        const char *specs[] = {longs[i], NULL};
        /* uid:: the number is what is quoted. */
        g_autofree char *needle = quoted(i == 1 ? longs[i] + 4 : longs[i]);
        g_autofree char *label = g_strdup_printf("long spec %zu (%zu bytes)", i, strlen(longs[i]));

        add(corpus, label, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "ResolveFunction",
            g_variant_new("(sa{sv})", longs[i], NULL), ERR_INVALID, needle);
        add_spec_calls(corpus, label, specs, ERR_INVALID, needle);
    }
    add_spec_calls(corpus, "same spec twice", twice, ERR_INVALID, "twice");
    add_spec_calls(corpus, "address and uid of one function", aliases, ERR_INVALID, "twice");
    add_spec_calls(corpus, "no spec", none, ERR_INVALID, "No function");

    for (guint i = 0; i < MANY; i++) {
        g_autofree char *fid = g_strdup_printf("0x%08x", 0x7f000000u + i);
        g_autofree char *bad = g_strdup_printf("spec-%u", i);
        g_strv_builder_add(same, ADDR_IDLE_NVME);
        g_strv_builder_add(absent, fid);
        g_strv_builder_add(broken, bad);
    }
    same_v = g_strv_builder_end(same);
    absent_v = g_strv_builder_end(absent);
    broken_v = g_strv_builder_end(broken);
    add_spec_calls(corpus, "5000 times one spec", (const char *const *)same_v, ERR_INVALID,
                   "twice");
    add_spec_calls(corpus, "5000 absent FIDs", (const char *const *)absent_v, ERR_NOT_FOUND,
                   "0x7f000000");
    add_spec_calls(corpus, "5000 malformed specs", (const char *const *)broken_v, ERR_INVALID,
                   "spec-0");
}

/* Every method with a broken options dict. */
static void
add_bad_options(GPtrArray *corpus, const char *fpath)
{
    g_autofree char *long_key = huge('k', HUGE_LEN);
    struct {
        const char *label;
        const char *key;
        GVariant *(*value)(void);
        const char *needle;
    } generic[] = {
        {"unknown option", "bogus", NULL, "bogus"},
        {"empty option key", "", NULL, "“”"},
        {"4 KiB option key", long_key, NULL, NULL},
        {"option key with newline", "dry-run\n", NULL, "dry-run\\n"},
        {"auth.* typo", "auth.bogus", NULL, "auth.bogus"},
        {"auth.no_user_interaction as string", ZPCID_OPTION_NO_USER_INTERACTION, NULL, "“b”"},
    };
    const char *specs[] = {ADDR_IDLE_NVME, NULL};

    for (gsize i = 0; i < G_N_ELEMENTS(generic); i++) {
        GVariantBuilder b;
        GVariant *opts;
        g_autofree char *needle =
            generic[i].needle != NULL ? g_strdup(generic[i].needle) : g_strndup(generic[i].key, 32);
        struct {
            const char *path, *iface, *method;
            const char *shape;
        } calls[] = {
            {ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "Check", "o"},
            {ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "ResolveFunction", "s"},
            {ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "Bind", "a"},
            {ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "Unbind", "a"},
            {ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "GetDomainXml", "a"},
            {ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "AttachToDomain", "d"},
            {ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "DetachFromDomain", "d"},
            {fpath, ZPCID_DBUS_IFACE_FUNCTION, "Bind", "o"},
            {fpath, ZPCID_DBUS_IFACE_FUNCTION, "Unbind", "o"},
            {fpath, ZPCID_DBUS_IFACE_FUNCTION, "GetHostdevXml", "o"},
        };

        /* Bind and Unbind leave keys outside "auth." to the binder's parser, which must
         * refuse them as well. */
        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&b, "{sv}", generic[i].key,
                              g_str_equal(generic[i].key, ZPCID_OPTION_NO_USER_INTERACTION)
                                  ? g_variant_new_string("yes")
                                  : g_variant_new_boolean(TRUE));
        opts = g_variant_ref_sink(g_variant_builder_end(&b));
        for (gsize j = 0; j < G_N_ELEMENTS(calls); j++) {
            g_autofree char *label = g_strdup_printf("%s.%s(%s)", strrchr(calls[j].iface, '.') + 1,
                                                     calls[j].method, generic[i].label);
            GVariant *params = NULL;

            switch (calls[j].shape[0]) {
            case 'o':
                params = g_variant_new("(@a{sv})", opts);
                break;
            case 's':
                params = g_variant_new("(s@a{sv})", ADDR_IDLE_NVME, opts);
                break;
            case 'a':
                params = g_variant_new("(^as@a{sv})", specs, opts);
                break;
            case 'd':
                params = g_variant_new("(s^as@a{sv})", "zpcid-guest", specs, opts);
                break;
            }
            add(corpus, label, calls[j].path, calls[j].iface, calls[j].method, params, ERR_INVALID,
                needle);
        }
        g_variant_unref(opts);
    }
}

/* Options of one method with wrong types or values, as GVariant text. */
typedef struct {
    const char *method; /* Manager method; "F.x" for a Function method */
    const char *options;
    const char *error;
    const char *needle;
} BadOption;

static const BadOption bad_options[] = {
    {"Bind", "{'dry-run': <'yes'>}", ERR_INVALID, "dry-run"},
    {"Bind", "{'persistent': <1>}", ERR_INVALID, "persistent"},
    {"Bind", "{'timeout': <'10'>}", ERR_INVALID, "timeout"},
    {"Bind", "{'timeout': <int32 -1>}", ERR_INVALID, "timeout"},
    {"Bind", "{'timeout': <uint64 1>}", ERR_INVALID, "timeout"},
    {"Bind", "{'allow-guards': <'net'>}", ERR_INVALID, "allow-guards"},
    {"Bind", "{'allow-guards': <['bogus']>}", ERR_INVALID, "bogus"},
    {"Bind", "{'allow-guards': <['standby']>}", ERR_INVALID, "standby"},
    {"Bind", "{'allow-guards': <['']>}", ERR_INVALID, "“”"},
    {"Bind", "{'policy': <'mirror'>}", ERR_INVALID, "policy"},
    {"Unbind", "{'dry-run': <0>}", ERR_INVALID, "dry-run"},
    {"Unbind", "{'allow-guards': <['net\\n']>}", ERR_INVALID, "net\\n"},
    {"Unbind", "{'merge': <'<domain/>'>}", ERR_INVALID, "merge"},
    {"F.Bind", "{'timeout': <-5>}", ERR_INVALID, "timeout"},
    {"F.Unbind", "{'persistent': <'no'>}", ERR_INVALID, "persistent"},
    {"GetDomainXml", "{'policy': <'bogus'>}", ERR_INVALID, "bogus"},
    {"GetDomainXml", "{'policy': <''>}", ERR_INVALID, "“”"},
    {"GetDomainXml", "{'policy': <1>}", ERR_INVALID, "policy"},
    {"GetDomainXml", "{'policy': <'explicit'>}", ERR_INVALID, "ids"},
    {"GetDomainXml", "{'policy': <'explicit'>, 'ids': <[(1, 2)]>}", ERR_INVALID, "ids"},
    {"GetDomainXml", "{'policy': <'explicit'>, 'ids': <@a(uu) []>}", ERR_INVALID, "ids"},
    {"GetDomainXml", "{'policy': <'explicit'>, 'ids': <[(uint32 0, uint32 1)]>}", ERR_INVALID, "0"},
    {"GetDomainXml", "{'policy': <'explicit'>, 'ids': <[(uint32 0x10000, uint32 1)]>}", ERR_INVALID,
     "0x10000"},
    {"GetDomainXml", "{'interpretation': <'maybe'>}", ERR_INVALID, "maybe"},
    {"GetDomainXml", "{'managed': <'yes'>}", ERR_INVALID, "managed"},
    {"GetDomainXml", "{'merge': <''>}", ERR_INVALID, NULL},
    {"GetDomainXml", "{'merge': <'<domain'>}", ERR_INVALID, NULL},
    {"GetDomainXml", "{'merge': <'not xml at all'>}", ERR_INVALID, NULL},
    {"GetDomainXml",
     "{'merge': <'<!DOCTYPE d [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;"
     "&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]><domain>&c;</domain>'>}",
     ERR_INVALID, NULL},
    {"GetDomainXml",
     "{'merge': <'<!DOCTYPE d [<!ENTITY x SYSTEM \"file:///etc/shadow\">]><domain "
     "type=\"kvm\"><name>&x;</name></domain>'>}",
     ERR_INVALID, NULL},
    {"GetDomainXml", "{'merge': <'<domain/>'>, 'new-domain': <'x'>}", ERR_INVALID, NULL},
    {"GetDomainXml", "{'domain': <'zpcid-guest'>, 'new-domain': <'x'>}", ERR_INVALID, NULL},
    {"GetDomainXml", "{'domain': <''>}", ERR_INVALID, NULL},
    {"GetDomainXml", "{'domain': <'no-such-domain'>}", ERR_NOT_FOUND, "no-such-domain"},
    {"GetDomainXml", "{'domain': <'../../etc/passwd'>}", ERR_INVALID, "../../etc/passwd"},
    {"GetDomainXml", "{'new-domain': <''>}", ERR_INVALID, NULL},
    {"GetDomainXml", "{'new-domain': <'a/b'>}", ERR_INVALID, "a/b"},
    {"GetDomainXml", "{'new-domain': <'a\\nb'>}", ERR_INVALID, "a\\nb"},
    {"GetDomainXml", "{'domain': <'zpcid-guest\\n'>}", ERR_INVALID, "zpcid-guest\\n"},
    {"GetDomainXml", "{'new-domain': <true>}", ERR_INVALID, "new-domain"},
    {"F.GetHostdevXml", "{'merge': <'<domain/>'>}", ERR_INVALID, "merge"},
    {"F.GetHostdevXml",
     "{'ids': <[(uint32 1, uint32 1), (uint32 2, uint32 2)]>, "
     "'policy': <'explicit'>}",
     ERR_INVALID, NULL},
    {"AttachToDomain", "{'live': <'yes'>}", ERR_INVALID, "live"},
    {"AttachToDomain", "{'config': <1>}", ERR_INVALID, "config"},
    {"AttachToDomain", "{'merge': <'<domain/>'>}", ERR_INVALID, "merge"},
    {"AttachToDomain", "{'live': <false>, 'config': <false>}", ERR_INVALID, NULL},
    {"DetachFromDomain", "{'policy': <'auto'>}", ERR_INVALID, "policy"},
    {"DetachFromDomain", "{'live': <@ay []>}", ERR_INVALID, "live"},
};

static void
add_option_values(GPtrArray *corpus, const char *fpath)
{
    const char *specs[] = {ADDR_IDLE_NVME, NULL};

    for (gsize i = 0; i < G_N_ELEMENTS(bad_options); i++) {
        const BadOption *b = &bad_options[i];
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) opts =
            g_variant_parse(G_VARIANT_TYPE_VARDICT, b->options, NULL, NULL, &error);
        g_autofree char *label = g_strdup_printf("%s(%s)", b->method, b->options);
        GVariant *params;

        g_assert_no_error(error);
        if (g_str_has_prefix(b->method, "F.")) {
            add(corpus, label, fpath, ZPCID_DBUS_IFACE_FUNCTION, b->method + 2,
                g_variant_new("(@a{sv})", opts), b->error, b->needle);
            continue;
        }
        if (g_str_has_suffix(b->method, "Domain"))
            params = g_variant_new("(s^as@a{sv})", "zpcid-guest", specs, opts);
        else
            params = g_variant_new("(^as@a{sv})", specs, opts);
        add(corpus, label, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, b->method, params, b->error,
            b->needle);
    }
}

/* Domain names of AttachToDomain and DetachFromDomain. */
static void
add_domain_names(GPtrArray *corpus)
{
    g_autofree char *long_name = huge('d', HUGE_LEN);
    const char *names[] = {"",     "../../etc/passwd", "zpcid-guest\n", "a\nb",
                           "%s%n", "zpcid guest",      long_name,       "Ünïcödé"};
    const char *specs[] = {ADDR_IDLE_NVME, NULL};

    for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
        const char *methods[] = {"AttachToDomain", "DetachFromDomain"};
        /* Names libvirt cannot have (empty, "/", control characters, longer than a file
         * name) are malformed; the others name no domain of this libvirt. */
        gboolean malformed =
            *names[i] == '\0' || strpbrk(names[i], "/\n") != NULL || strlen(names[i]) > 255;
        const char *error = malformed ? ERR_INVALID : ERR_NOT_FOUND;

        for (gsize j = 0; j < G_N_ELEMENTS(methods); j++) {
            g_autofree char *esc = g_strescape(names[i], NULL);
            g_autofree char *label = g_strdup_printf("%s(domain “%.40s”)", methods[j], esc);

            add(corpus, label, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, methods[j],
                g_variant_new("(s^asa{sv})", names[i], specs, NULL), error, NULL);
        }
    }
}

/* Wrong signatures, properties, objects and interfaces: GDBus or the bus answer. */
static void
add_protocol(GPtrArray *corpus, const char *fpath)
{
    const char *specs[] = {ADDR_IDLE_NVME, NULL};
    const char *mgr = ZPCID_DBUS_IFACE_MANAGER;
    const char *fn = ZPCID_DBUS_IFACE_FUNCTION;
    const char *props = "org.freedesktop.DBus.Properties";
    const char *om = "org.freedesktop.DBus.ObjectManager";
    const char *root = ZPCID_DBUS_PATH;
    struct {
        const char *label;
        const char *path; /* NULL: the function */
        const char *iface, *method;
        GVariant *params;
        const char *error;
    } calls[] = {
        {"Check()", root, mgr, "Check", NULL, DBUS_INVALID_ARGS},
        {"Check(s)", root, mgr, "Check", g_variant_new("(s)", "x"), DBUS_INVALID_ARGS},
        {"Check(a{ss})", root, mgr, "Check", g_variant_new_parsed("(@a{ss} {'a': 'b'},)"),
         DBUS_INVALID_ARGS},
        {"Check(a{sv}, a{sv})", root, mgr, "Check", g_variant_new("(a{sv}a{sv})", NULL, NULL),
         DBUS_INVALID_ARGS},
        {"ResolveFunction(u)", root, mgr, "ResolveFunction", g_variant_new("(u)", 10),
         DBUS_INVALID_ARGS},
        {"ResolveFunction(o, a{sv})", root, mgr, "ResolveFunction",
         g_variant_new("(oa{sv})", "/x", NULL), DBUS_INVALID_ARGS},
        {"Bind(s, a{sv})", root, mgr, "Bind", g_variant_new("(sa{sv})", ADDR_IDLE_NVME, NULL),
         DBUS_INVALID_ARGS},
        {"Bind(as)", root, mgr, "Bind", g_variant_new("(^as)", specs), DBUS_INVALID_ARGS},
        {"Unbind(au, a{sv})", root, mgr, "Unbind", g_variant_new_parsed("([uint32 10], @a{sv} {})"),
         DBUS_INVALID_ARGS},
        {"GetDomainXml(as, a{ss})", root, mgr, "GetDomainXml",
         g_variant_new_parsed("(['000a:00:00.0'], @a{ss} {})"), DBUS_INVALID_ARGS},
        {"AttachToDomain(as, s, a{sv})", root, mgr, "AttachToDomain",
         g_variant_new("(^assa{sv})", specs, "zpcid-guest", NULL), DBUS_INVALID_ARGS},
        {"DetachFromDomain(as, a{sv})", root, mgr, "DetachFromDomain",
         g_variant_new("(^asa{sv})", specs, NULL), DBUS_INVALID_ARGS},
        {"Function.Bind()", NULL, fn, "Bind", NULL, DBUS_INVALID_ARGS},
        {"Function.Unbind(b)", NULL, fn, "Unbind", g_variant_new("(b)", TRUE), DBUS_INVALID_ARGS},
        {"Function.GetHostdevXml(s)", NULL, fn, "GetHostdevXml", g_variant_new("(s)", "x"),
         DBUS_INVALID_ARGS},
        {"Manager.Bogus", root, mgr, "Bogus", NULL, DBUS_UNKNOWN_METHOD},
        {"Function.Bogus", NULL, fn, "Bogus", NULL, DBUS_UNKNOWN_METHOD},
        {"Function method on the manager", root, fn, "Bind", g_variant_new("(a{sv})", NULL),
         DBUS_UNKNOWN_METHOD},
        {"Manager method on a function", NULL, mgr, "Check", g_variant_new("(a{sv})", NULL),
         DBUS_UNKNOWN_METHOD},
        {"a function that does not exist", ZPCID_DBUS_FUNCTIONS_PATH "/ffffffff", fn, "Bind",
         g_variant_new("(a{sv})", NULL), DBUS_UNKNOWN_METHOD},
        {"a path outside zpcid's", "/org/zpcid1/functions/00000000/x", fn, "Unbind",
         g_variant_new("(a{sv})", NULL), DBUS_UNKNOWN_METHOD},
        {"Get of an unknown property", root, props, "Get", g_variant_new("(ss)", mgr, "Bogus"),
         DBUS_INVALID_ARGS},
        {"Get of an unknown interface", root, props, "Get",
         g_variant_new("(ss)", "org.zpcid1.Bogus", "Version"), DBUS_INVALID_ARGS},
        {"Get with an empty interface", NULL, props, "Get", g_variant_new("(ss)", "", "Fid"),
         DBUS_INVALID_ARGS},
        /* GDBus answers a wrong signature of a standard interface as an unknown method. */
        {"Get(s)", root, props, "Get", g_variant_new("(s)", mgr), DBUS_UNKNOWN_METHOD},
        {"GetAll of an unknown interface", NULL, props, "GetAll",
         g_variant_new("(s)", "org.zpcid1.Bogus"), DBUS_INVALID_ARGS},
        {"GetAll(u)", NULL, props, "GetAll", g_variant_new("(u)", 1), DBUS_UNKNOWN_METHOD},
        {"Set of Manager.Version", root, props, "Set",
         g_variant_new("(ssv)", mgr, "Version", g_variant_new_string("9")), DBUS_INVALID_ARGS},
        {"Set of Manager.PassthroughReady", root, props, "Set",
         g_variant_new("(ssv)", mgr, "PassthroughReady", g_variant_new_boolean(FALSE)),
         DBUS_INVALID_ARGS},
        {"Set of Function.Driver", NULL, props, "Set",
         g_variant_new("(ssv)", fn, "Driver", g_variant_new_string("vfio-pci")), DBUS_INVALID_ARGS},
        {"Set of Function.DriverOverride", NULL, props, "Set",
         g_variant_new("(ssv)", fn, "DriverOverride", g_variant_new_string("../../x")),
         DBUS_INVALID_ARGS},
        {"Set of Function.Persistent", NULL, props, "Set",
         g_variant_new("(ssv)", fn, "Persistent", g_variant_new_boolean(TRUE)), DBUS_INVALID_ARGS},
        {"Set of Function.Fid with a wrong type", NULL, props, "Set",
         g_variant_new("(ssv)", fn, "Fid", g_variant_new_string("x")), DBUS_INVALID_ARGS},
        {"GetManagedObjects(s)", root, om, "GetManagedObjects", g_variant_new("(s)", "x"),
         DBUS_INVALID_ARGS},
        {"GetManagedObjects on a function", NULL, om, "GetManagedObjects", NULL,
         DBUS_UNKNOWN_METHOD},
        /* The bus policy offers zpcid's interfaces and the standard ones, nothing else. */
        {"an interface the policy does not offer", root, "org.zpcid1.Debug", "Check",
         g_variant_new("(a{sv})", NULL), DBUS_ACCESS_DENIED},
        {"org.freedesktop.DBus.Monitoring at zpcid", root, "org.freedesktop.DBus.Monitoring",
         "BecomeMonitor", g_variant_new("(asu)", NULL, 0), DBUS_ACCESS_DENIED},
        {"Properties at an unknown interface-less path", "/", props, "GetAll",
         g_variant_new("(s)", mgr), DBUS_UNKNOWN_METHOD},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(calls); i++)
        add(corpus, calls[i].label, calls[i].path != NULL ? calls[i].path : fpath, calls[i].iface,
            calls[i].method, calls[i].params, calls[i].error, NULL);
}

/* ---- the run ---- */

static gboolean
run_one(Env *env, const HostileCall *c, const char *fpath)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = NULL;
    g_autofree char *remote = NULL;
    g_autofree char *shown = NULL;
    gboolean ok = TRUE;

    reply = g_dbus_connection_call_sync(env->conn, ZPCID_DBUS_NAME,
                                        c->path != NULL ? c->path : fpath, c->iface, c->method,
                                        c->params != NULL ? g_variant_ref(c->params) : NULL, NULL,
                                        G_DBUS_CALL_FLAGS_NONE, TIMEOUT_MS, NULL, &error);
    if (reply != NULL) {
        g_printerr("# %s: succeeded, expected %s\n", c->label, c->error);
        return FALSE;
    }
    remote = g_dbus_error_get_remote_error(error);
    g_dbus_error_strip_remote_error(error);
    if (g_strcmp0(remote, c->error) != 0) {
        g_printerr("# %s: expected %s, got %s: %s\n", c->label, c->error, remote, error->message);
        ok = FALSE;
    } else if (g_str_has_prefix(c->error, ZPCID_DBUS_ERROR_PREFIX)) {
        /* Ours: a whole sentence that names what was wrong, never a 4 KiB echo. */
        if (c->needle != NULL && strstr(error->message, c->needle) == NULL) {
            g_printerr("# %s: the message does not name “%s”: %s\n", c->label, c->needle,
                       error->message);
            ok = FALSE;
        }
        if (strlen(error->message) < 20 || strlen(error->message) > 1024 ||
            !g_utf8_validate(error->message, -1, NULL)) {
            g_printerr("# %s: not a sentence: %.200s\n", c->label, error->message);
            ok = FALSE;
        }
    }
    shown = g_utf8_substring(error->message, 0, MIN(g_utf8_strlen(error->message, -1), 160));
    g_test_message("%s → %s: %s", c->label, remote, shown);
    if (!daemon_alive(env)) {
        g_printerr("# %s: zpcid stopped answering\n", c->label);
        ok = FALSE;
    }
    return ok;
}

static void
test_hostile_corpus(void)
{
    Env *env = env_new(ENV_GUEST);
    g_autofree char *fpath = resolve(env, ADDR_IDLE_NVME);
    g_autoptr(GPtrArray) corpus = g_ptr_array_new_with_free_func((GDestroyNotify)hostile_call_free);
    g_autoptr(GHashTable) host_before = NULL;
    g_autoptr(GHashTable) state_before = NULL;
    g_autoptr(GHashTable) host_after = NULL;
    g_autoptr(GHashTable) state_after = NULL;
    guint passed = 0;

    add_bad_specs(corpus);
    add_big_specs(corpus);
    add_bad_options(corpus, fpath);
    add_option_values(corpus, fpath);
    add_domain_names(corpus);
    add_protocol(corpus, fpath);

    host_before = tree_snapshot(env->host);
    state_before = tree_snapshot(env->state);
    for (guint i = 0; i < corpus->len; i++)
        passed += run_one(env, g_ptr_array_index(corpus, i), fpath);
    /* The figure docs/robustness.md quotes. */
    g_test_message("hostile calls: %u tried, %u passed", corpus->len, passed);
    g_print("# hostile calls: %u tried, %u passed\n", corpus->len, passed);
    g_assert_cmpuint(corpus->len, >=, 200);
    g_assert_cmpuint(passed, ==, corpus->len);

    /* Nothing on the host changed: every file, every driver link. */
    host_after = tree_snapshot(env->host);
    state_after = tree_snapshot(env->state);
    g_assert_cmpuint(g_hash_table_size(host_before), >, 100);
    tree_assert_equal(host_before, host_after);
    tree_assert_equal(state_before, state_after);
    g_assert_false(env->daemon_gone);
    env_free(env);
}

/* The bus policy: only root may own org.zpcid1; a client of another user cannot take it. */
static void
test_bus_policy(void)
{
    Env *env;
    g_autoptr(GSubprocessLauncher) launcher = NULL;
    g_autoptr(GSubprocess) p = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;

    if (getuid() != 0) {
        g_test_skip("Only root can start a client as another user.");
        return;
    }
    env = env_new(ENV_DEFAULT);
    launcher = launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE, TRUE);
    {
        const char *argv[] = {"gdbus",
                              "call",
                              "--address",
                              env->bus_address,
                              "--dest",
                              "org.freedesktop.DBus",
                              "--object-path",
                              "/org/freedesktop/DBus",
                              "--method",
                              "org.freedesktop.DBus.RequestName",
                              ZPCID_DBUS_NAME,
                              "4",
                              NULL};
        p = g_subprocess_launcher_spawnv(launcher, argv, &error);
    }
    g_assert_no_error(error);
    g_assert_true(g_subprocess_communicate_utf8(p, NULL, NULL, &out, &err, &error));
    g_test_message("RequestName as nobody: %s%s", out, err);
    g_assert_false(g_subprocess_get_successful(p));
    g_assert_nonnull(strstr(err, DBUS_ACCESS_DENIED));
    g_assert_true(daemon_alive(env));
    env_free(env);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/dbus/hostile/corpus", test_hostile_corpus);
    g_test_add_func("/dbus/hostile/bus-policy", test_bus_policy);
    return g_test_run();
}
