#include "domxml.h"

#include <errno.h>
#include <glib/gi18n-lib.h>
#include <inttypes.h>
#include <libxml/c14n.h>
#include <libxml/parser.h>
#include <libxml/relaxng.h>
#include <libxml/tree.h>
#include <libxml/xmlsave.h>
#include <string.h>

#include "error.h"
#include "zpcid-names.h"

/* Local name of zpcid's element inside <metadata>, and of its entries. */
#define META_ROOT "passthrough"
#define META_FUNCTION "function"
#define META_VERDICT "verdict"
#define META_VERSION "1"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlDoc, xmlFreeDoc)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlParserCtxt, xmlFreeParserCtxt)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlBuffer, xmlBufferFree)

typedef xmlChar XmlString;
static void
xml_string_free(XmlString *s)
{
    xmlFree(s);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(XmlString, xml_string_free)

/* ------------------------------------------------------------------------------------------ */
/* Enum words                                                                                 */

static const char *const policy_words[] = {"mirror", "auto", "explicit"};
static const char *const interpretation_words[] = {"required", "preferred", "off"};

const char *
zpcid_zpci_policy_to_string(ZpcidZpciPolicy policy)
{
    g_return_val_if_fail((guint)policy < G_N_ELEMENTS(policy_words), NULL);
    return policy_words[policy];
}

gboolean
zpcid_zpci_policy_from_string(const char *text, ZpcidZpciPolicy *policy, GError **error)
{
    for (guint i = 0; i < G_N_ELEMENTS(policy_words); i++) {
        if (g_strcmp0(text, policy_words[i]) == 0) {
            *policy = (ZpcidZpciPolicy)i;
            return TRUE;
        }
    }
    g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                _("“%s” is not a zPCI id policy: use mirror, auto or explicit."),
                text != NULL ? text : "");
    return FALSE;
}

const char *
zpcid_interpretation_to_string(ZpcidInterpretation interpretation)
{
    g_return_val_if_fail((guint)interpretation < G_N_ELEMENTS(interpretation_words), NULL);
    return interpretation_words[interpretation];
}

gboolean
zpcid_interpretation_from_string(const char *text, ZpcidInterpretation *interpretation,
                                 GError **error)
{
    for (guint i = 0; i < G_N_ELEMENTS(interpretation_words); i++) {
        if (g_strcmp0(text, interpretation_words[i]) == 0) {
            *interpretation = (ZpcidInterpretation)i;
            return TRUE;
        }
    }
    g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                _("“%s” is not an interpretation policy: use required, preferred or off."),
                text != NULL ? text : "");
    return FALSE;
}

/* ------------------------------------------------------------------------------------------ */
/* Result and info                                                                            */

void
zpcid_domxml_result_free(ZpcidDomxmlResult *result)
{
    if (result == NULL)
        return;
    g_free(result->xml);
    g_clear_pointer(&result->hostdevs, g_ptr_array_unref);
    g_clear_pointer(&result->ids, g_array_unref);
    g_free(result->metadata);
    g_clear_pointer(&result->warnings, g_ptr_array_unref);
    g_free(result);
}

static ZpcidDomxmlResult *
result_new(void)
{
    ZpcidDomxmlResult *result = g_new0(ZpcidDomxmlResult, 1);
    result->hostdevs = g_ptr_array_new_with_free_func(g_free);
    result->ids = g_array_new(FALSE, TRUE, sizeof(ZpcidZpciIds));
    result->warnings = g_ptr_array_new_with_free_func(g_free);
    return result;
}

static void
zpci_clear(gpointer data)
{
    ZpcidDomxmlZpci *zpci = data;
    g_free(zpci->device);
}

static void
intent_clear(gpointer data)
{
    ZpcidDomxmlIntent *intent = data;
    g_free(intent->check);
}

static ZpcidDomxmlInfo *
info_new(void)
{
    ZpcidDomxmlInfo *info = g_new0(ZpcidDomxmlInfo, 1);
    info->sources = g_array_new(FALSE, TRUE, sizeof(ZpcidDomxmlSource));
    info->zpci = g_array_new(FALSE, TRUE, sizeof(ZpcidDomxmlZpci));
    g_array_set_clear_func(info->zpci, zpci_clear);
    info->intents = g_array_new(FALSE, TRUE, sizeof(ZpcidDomxmlIntent));
    g_array_set_clear_func(info->intents, intent_clear);
    return info;
}

void
zpcid_domxml_info_free(ZpcidDomxmlInfo *info)
{
    if (info == NULL)
        return;
    g_free(info->name);
    g_free(info->uuid);
    g_free(info->arch);
    g_clear_pointer(&info->sources, g_array_unref);
    g_clear_pointer(&info->zpci, g_array_unref);
    g_clear_pointer(&info->intents, g_array_unref);
    g_free(info);
}

static gboolean
pci_address_equal(const ZpcidPciAddress *a, const ZpcidPciAddress *b)
{
    return a->domain == b->domain && a->bus == b->bus && a->slot == b->slot &&
           a->function == b->function;
}

gboolean
zpcid_domxml_info_uses(const ZpcidDomxmlInfo *info, const ZpcidPciAddress *address)
{
    for (guint i = 0; i < info->sources->len; i++) {
        if (pci_address_equal(&g_array_index(info->sources, ZpcidDomxmlSource, i).address,
                              address))
            return TRUE;
    }
    return FALSE;
}

/* ------------------------------------------------------------------------------------------ */
/* Scanning the raw text                                                                      */

/* Where an element sits in the original bytes, so that output can keep every byte that is not
 * ours: libxml2's serializer would rewrite quotes, the declaration and spacing inside tags. */
typedef struct {
    gsize start;    /* the '<' of its start tag */
    gsize end;      /* just after its end tag (or after "/>") */
    gsize name_len; /* the name follows the '<' */
} Span;

typedef enum {
    SCAN_OK,
    SCAN_MALFORMED,
    SCAN_DOCTYPE,
} ScanResult;

static gboolean
has_prefix_at(const char *s, gsize n, gsize i, const char *prefix)
{
    gsize len = strlen(prefix);
    return n - i >= len && memcmp(s + i, prefix, len) == 0;
}

/* Element spans in document order. Only what libxml2 accepted as well-formed and free of a DTD
 * is scanned for output, so the grammar here can be the few constructs such a document has. */
static ScanResult
scan_spans(const char *s, gsize n, GArray *spans)
{
    g_autoptr(GArray) stack = g_array_new(FALSE, FALSE, sizeof(guint));
    gsize i = 0;

    while (i < n) {
        const char *lt = memchr(s + i, '<', n - i);
        const char *stop;

        if (lt == NULL)
            break;
        i = (gsize)(lt - s);
        if (has_prefix_at(s, n, i, "<!--")) {
            stop = memmem(s + i + 4, n - i - 4, "-->", 3);
            if (stop == NULL)
                return SCAN_MALFORMED;
            i = (gsize)(stop - s) + 3;
        } else if (has_prefix_at(s, n, i, "<![CDATA[")) {
            stop = memmem(s + i + 9, n - i - 9, "]]>", 3);
            if (stop == NULL)
                return SCAN_MALFORMED;
            i = (gsize)(stop - s) + 3;
        } else if (has_prefix_at(s, n, i, "<?")) {
            stop = memmem(s + i + 2, n - i - 2, "?>", 2);
            if (stop == NULL)
                return SCAN_MALFORMED;
            i = (gsize)(stop - s) + 2;
        } else if (has_prefix_at(s, n, i, "<!")) {
            return SCAN_DOCTYPE;
        } else if (has_prefix_at(s, n, i, "</")) {
            guint index;

            stop = memchr(s + i, '>', n - i);
            if (stop == NULL || stack->len == 0)
                return SCAN_MALFORMED;
            index = g_array_index(stack, guint, stack->len - 1);
            g_array_set_size(stack, stack->len - 1);
            g_array_index(spans, Span, index).end = (gsize)(stop - s) + 1;
            i = (gsize)(stop - s) + 1;
        } else {
            Span span = {.start = i};
            gsize j = i + 1;
            char quote = 0;

            while (j < n && !g_ascii_isspace(s[j]) && s[j] != '/' && s[j] != '>')
                j++;
            span.name_len = j - i - 1;
            for (; j < n; j++) {
                if (quote != 0) {
                    if (s[j] == quote)
                        quote = 0;
                } else if (s[j] == '"' || s[j] == '\'') {
                    quote = s[j];
                } else if (s[j] == '>') {
                    break;
                }
            }
            if (j >= n || span.name_len == 0)
                return SCAN_MALFORMED;
            if (s[j - 1] == '/') {
                span.end = j + 1;
                g_array_append_val(spans, span);
            } else {
                guint index = spans->len;
                g_array_append_val(spans, span);
                g_array_append_val(stack, index);
            }
            i = j + 1;
        }
    }
    return stack->len == 0 ? SCAN_OK : SCAN_MALFORMED;
}

/* ------------------------------------------------------------------------------------------ */
/* Safe parsing                                                                               */

typedef struct {
    char *first_error;
    gboolean doctype;
} ParseState;

static void
parse_error_cb(void *data, xmlErrorPtr err)
{
    xmlParserCtxtPtr ctxt = data;
    ParseState *state = ctxt->_private;

    if (state->first_error == NULL && err != NULL && err->level >= XML_ERR_ERROR) {
        g_autofree char *message = g_strdup(err->message != NULL ? err->message : "");
        state->first_error = g_strdup_printf("line %d: %s", err->line, g_strchomp(message));
    }
}

static void
internal_subset_cb(void *data, const xmlChar *name, const xmlChar *external_id,
                   const xmlChar *system_id)
{
    xmlParserCtxtPtr ctxt = data;
    ParseState *state = ctxt->_private;

    /* Stopping here, before any declaration of the subset is read, is what keeps entity
     * definitions (and their expansion) out entirely. */
    state->doctype = TRUE;
    xmlStopParser(ctxt);
}

typedef struct {
    const char *text;
    gsize len;
    xmlDocPtr doc;
    GArray *spans; /* NULL if the bytes could not be mapped; output then falls back */
} Source;

static void
source_clear(Source *source)
{
    g_clear_pointer(&source->doc, xmlFreeDoc);
    g_clear_pointer(&source->spans, g_array_unref);
}

static xmlDocPtr
parse_xml(const char *text, gsize len, GError **error)
{
    g_autoptr(xmlParserCtxt) ctxt = NULL;
    ParseState state = {0};
    xmlDocPtr doc;

    ctxt = xmlNewParserCtxt();
    if (ctxt == NULL) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_FAILED,
                    _("Could not create an XML parser."));
        return NULL;
    }
    ctxt->_private = &state;
    ctxt->sax->serror = parse_error_cb;
    ctxt->sax->internalSubset = internal_subset_cb;
    /* No NOENT, DTDLOAD, DTDATTR, XINCLUDE or HUGE: nothing is fetched or expanded, and
     * libxml2 keeps its default size limits. */
    doc = xmlCtxtReadMemory(ctxt, text, (int)len, "domain.xml", "UTF-8",
                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (state.doctype || (doc != NULL && (doc->intSubset != NULL || doc->extSubset != NULL))) {
        g_clear_pointer(&doc, xmlFreeDoc);
        g_free(state.first_error);
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                    _("The XML document contains a document type declaration; zpcid refuses "
                      "those so that no entity is ever expanded."));
        return NULL;
    }
    /* A namespace error (an unbound prefix, xmlns:p='') leaves libxml2's tree with elements
     * that other readers, libvirt among them, may see differently: refused as well. */
    if (doc == NULL || !ctxt->wellFormed || !ctxt->nsWellFormed) {
        g_clear_pointer(&doc, xmlFreeDoc);
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                    _("The XML document is not well-formed: %s."),
                    state.first_error != NULL ? state.first_error : "unknown error");
        g_free(state.first_error);
        return NULL;
    }
    g_free(state.first_error);
    return doc;
}

static gboolean
source_parse(Source *source, const char *text, GError **error)
{
    g_autoptr(GArray) spans = g_array_new(FALSE, TRUE, sizeof(Span));
    gsize len;
    ScanResult scan;

    memset(source, 0, sizeof(*source));
    if (text == NULL) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                    _("No XML document was given."));
        return FALSE;
    }
    len = strnlen(text, ZPCID_DOMXML_MAX_SIZE + 1);
    if (len > ZPCID_DOMXML_MAX_SIZE) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                    _("The XML document is larger than the limit of %u bytes."),
                    (guint)ZPCID_DOMXML_MAX_SIZE);
        return FALSE;
    }
    if (!g_utf8_validate(text, (gssize)len, NULL)) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                    _("The XML document is not valid UTF-8."));
        return FALSE;
    }
    /* The raw scan runs first so that a DTD is refused before libxml2 reads any of it. */
    scan = scan_spans(text, len, spans);
    if (scan == SCAN_DOCTYPE) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                    _("The XML document contains a document type declaration; zpcid refuses "
                      "those so that no entity is ever expanded."));
        return FALSE;
    }
    source->doc = parse_xml(text, len, error);
    if (source->doc == NULL)
        return FALSE;
    source->text = text;
    source->len = len;
    if (scan == SCAN_OK)
        source->spans = g_steal_pointer(&spans);
    return TRUE;
}

/* ------------------------------------------------------------------------------------------ */
/* Tree helpers                                                                               */

static gboolean
node_is(xmlNodePtr node, const char *name)
{
    return node != NULL && node->type == XML_ELEMENT_NODE && node->ns == NULL &&
           g_strcmp0((const char *)node->name, name) == 0;
}

static gboolean
node_in_ns(xmlNodePtr node, const char *href, const char *name)
{
    return node != NULL && node->type == XML_ELEMENT_NODE && node->ns != NULL &&
           g_strcmp0((const char *)node->ns->href, href) == 0 &&
           (name == NULL || g_strcmp0((const char *)node->name, name) == 0);
}

static xmlNodePtr
first_child(xmlNodePtr parent, const char *name)
{
    for (xmlNodePtr c = parent != NULL ? parent->children : NULL; c != NULL; c = c->next) {
        if (node_is(c, name))
            return c;
    }
    return NULL;
}

static xmlNodePtr
last_element_child(xmlNodePtr parent, const char *name)
{
    xmlNodePtr found = NULL;

    for (xmlNodePtr c = parent->children; c != NULL; c = c->next) {
        if (c->type == XML_ELEMENT_NODE && (name == NULL || node_is(c, name)))
            found = c;
    }
    return found;
}

/* Attribute without namespace, or NULL; g_free() the result. */
static char *
prop(xmlNodePtr node, const char *name)
{
    xmlChar *value = xmlGetNoNsProp(node, (const xmlChar *)name);
    char *copy;

    if (value == NULL)
        return NULL;
    copy = g_strdup((const char *)value);
    xmlFree(value);
    return copy;
}

static gboolean
prop_is(xmlNodePtr node, const char *name, const char *expected)
{
    g_autofree char *value = prop(node, name);
    return g_strcmp0(value, expected) == 0;
}

static char *
node_text(xmlNodePtr node)
{
    g_autoptr(XmlString) content = xmlNodeGetContent(node);
    return content != NULL ? g_strstrip(g_strdup((const char *)content)) : NULL;
}

static xmlNodePtr
new_child(xmlNodePtr parent, const char *name)
{
    return xmlNewChild(parent, NULL, (const xmlChar *)name, NULL);
}

static void
set_prop(xmlNodePtr node, const char *name, const char *value)
{
    xmlSetProp(node, (const xmlChar *)name, (const xmlChar *)value);
}

static void
set_propf(xmlNodePtr node, const char *name, const char *format, ...) G_GNUC_PRINTF(3, 4);

static void
set_propf(xmlNodePtr node, const char *name, const char *format, ...)
{
    va_list args;
    g_autofree char *value = NULL;

    va_start(args, format);
    value = g_strdup_vprintf(format, args);
    va_end(args);
    set_prop(node, name, value);
}

static xmlNodePtr
new_text(xmlDocPtr doc, const char *text)
{
    return xmlNewDocText(doc, (const xmlChar *)text);
}

/* Inserts whitespace so that @node's content of elements and comments is laid out one per
 * line, two spaces deeper than @indent (the indentation of @node itself). Text content is left
 * alone: whitespace there would change its value. */
static void
indent_tree(xmlNodePtr node, const char *indent)
{
    g_autofree char *inner = g_strconcat(indent, "  ", NULL);
    g_autofree char *inner_ws = g_strconcat("\n", inner, NULL);
    g_autofree char *close_ws = g_strconcat("\n", indent, NULL);
    gboolean layout_only = node->children != NULL;

    for (xmlNodePtr c = node->children; c != NULL; c = c->next) {
        if (c->type != XML_ELEMENT_NODE && c->type != XML_COMMENT_NODE)
            layout_only = FALSE;
    }
    if (!layout_only)
        return;
    for (xmlNodePtr c = node->children; c != NULL;) {
        xmlNodePtr next = c->next;
        xmlAddPrevSibling(c, new_text(node->doc, inner_ws));
        indent_tree(c, inner);
        c = next;
    }
    xmlAddChild(node, new_text(node->doc, close_ws));
}

/* The whitespace that precedes @node in its parent, if it is pure whitespace with a newline;
 * NULL for compact documents. */
static const char *
leading_ws(xmlNodePtr node)
{
    xmlNodePtr prev = node->prev;

    if (prev == NULL || prev->type != XML_TEXT_NODE || !xmlIsBlankNode(prev) ||
        prev->content == NULL || strchr((const char *)prev->content, '\n') == NULL)
        return NULL;
    return (const char *)prev->content;
}

/* Indentation of a line that starts with @ws's last line. */
static const char *
indent_of(const char *ws)
{
    const char *nl = ws != NULL ? strrchr(ws, '\n') : NULL;
    return nl != NULL ? nl + 1 : NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Serialization                                                                              */

static char *
dump_node(xmlNodePtr node)
{
    g_autoptr(xmlBuffer) buffer = xmlBufferCreate();
    xmlSaveCtxtPtr save = xmlSaveToBuffer(buffer, "UTF-8", 0);

    /* An explicit encoding keeps non-ASCII text as UTF-8 instead of character references. */
    xmlSaveTree(save, node);
    xmlSaveClose(save);
    return g_strndup((const char *)xmlBufferContent(buffer), (gsize)xmlBufferLength(buffer));
}

static char *
dump_doc(xmlDocPtr doc, gboolean declaration)
{
    g_autoptr(xmlBuffer) buffer = xmlBufferCreate();
    xmlSaveCtxtPtr save = xmlSaveToBuffer(buffer, "UTF-8", declaration ? 0 : XML_SAVE_NO_DECL);

    xmlSaveDoc(save, doc);
    xmlSaveClose(save);
    return g_strndup((const char *)xmlBufferContent(buffer), (gsize)xmlBufferLength(buffer));
}

static char *
canonical(xmlDocPtr doc)
{
    xmlChar *out = NULL;
    int len = xmlC14NDocDumpMemory(doc, NULL, XML_C14N_1_0, NULL, 1, &out);
    char *copy = len >= 0 && out != NULL ? g_strndup((const char *)out, (gsize)len) : NULL;

    xmlFree(out);
    return copy;
}

/* A change of the original text: @remove bytes at @offset become the serialization of @nodes.
 * Nodes are serialized only once the tree is complete. */
typedef struct {
    gsize offset;
    gsize remove;
    guint seq;
    GPtrArray *nodes; /* xmlNodePtr, not owned */
} Edit;

typedef struct {
    Source *source;
    GHashTable *span_of; /* xmlNodePtr -> index + 1 into source->spans */
    GArray *edits;
    gboolean broken;     /* an edit could not be placed: fall back to full serialization */
} Splicer;

static void
edit_clear(gpointer data)
{
    Edit *edit = data;
    g_clear_pointer(&edit->nodes, g_ptr_array_unref);
}

static void
map_spans(Splicer *splicer, xmlNodePtr node, guint *index)
{
    for (; node != NULL; node = node->next) {
        Span *span;
        gsize name_len;
        const char *prefix;
        g_autofree char *qname = NULL;

        if (node->type != XML_ELEMENT_NODE)
            continue;
        if (*index >= splicer->source->spans->len) {
            splicer->broken = TRUE;
            return;
        }
        span = &g_array_index(splicer->source->spans, Span, *index);
        /* A sanity check that the raw scan and libxml2 saw the same elements. */
        prefix = node->ns != NULL && node->ns->prefix != NULL ? (const char *)node->ns->prefix
                                                              : NULL;
        qname = prefix != NULL ? g_strconcat(prefix, ":", (const char *)node->name, NULL)
                               : g_strdup((const char *)node->name);
        name_len = strlen(qname);
        if (span->name_len != name_len ||
            memcmp(splicer->source->text + span->start + 1, qname, name_len) != 0) {
            splicer->broken = TRUE;
            return;
        }
        g_hash_table_insert(splicer->span_of, node, GUINT_TO_POINTER(*index + 1));
        (*index)++;
        map_spans(splicer, node->children, index);
        if (splicer->broken)
            return;
    }
}

static void
splicer_init(Splicer *splicer, Source *source)
{
    guint index = 0;

    splicer->source = source;
    splicer->span_of = g_hash_table_new(g_direct_hash, g_direct_equal);
    splicer->edits = g_array_new(FALSE, TRUE, sizeof(Edit));
    g_array_set_clear_func(splicer->edits, edit_clear);
    splicer->broken = source->spans == NULL;
    if (!splicer->broken)
        map_spans(splicer, xmlDocGetRootElement(source->doc), &index);
    if (!splicer->broken && index != source->spans->len)
        splicer->broken = TRUE;
}

static void
splicer_clear(Splicer *splicer)
{
    g_clear_pointer(&splicer->span_of, g_hash_table_unref);
    g_clear_pointer(&splicer->edits, g_array_unref);
}

static const Span *
span_of(Splicer *splicer, xmlNodePtr node)
{
    guint index = GPOINTER_TO_UINT(g_hash_table_lookup(splicer->span_of, node));
    return index > 0 ? &g_array_index(splicer->source->spans, Span, index - 1) : NULL;
}

static void
add_edit(Splicer *splicer, gsize offset, gsize remove, xmlNodePtr *nodes, guint n_nodes)
{
    Edit edit = {offset, remove, splicer->edits->len, g_ptr_array_new()};

    for (guint i = 0; i < n_nodes; i++)
        g_ptr_array_add(edit.nodes, nodes[i]);
    g_array_append_val(splicer->edits, edit);
}

/* Puts @nodes right after the existing element @ref, in the tree and in the text. */
static void
insert_after(Splicer *splicer, xmlNodePtr ref, xmlNodePtr *nodes, guint n_nodes)
{
    const Span *span = span_of(splicer, ref);
    xmlNodePtr cursor = ref;

    for (guint i = 0; i < n_nodes; i++)
        cursor = xmlAddNextSibling(cursor, nodes[i]);
    if (span == NULL)
        splicer->broken = TRUE;
    else
        add_edit(splicer, span->end, 0, nodes, n_nodes);
}

/* Records that the existing element @node was changed inside and is written anew. */
static void
rewrite_element(Splicer *splicer, xmlNodePtr node)
{
    const Span *span = span_of(splicer, node);

    if (span == NULL)
        splicer->broken = TRUE;
    else
        add_edit(splicer, span->start, span->end - span->start, &node, 1);
}

static gint
edit_compare(gconstpointer a, gconstpointer b)
{
    const Edit *ea = a, *eb = b;

    if (ea->offset != eb->offset)
        return ea->offset < eb->offset ? -1 : 1;
    /* Later insertions after the same element went directly after it, before earlier ones. */
    return ea->seq > eb->seq ? -1 : (ea->seq < eb->seq ? 1 : 0);
}

/* The original text with the edits applied, or NULL if that cannot be trusted (the caller then
 * serializes the tree). */
static char *
splicer_output(Splicer *splicer)
{
    g_autoptr(GString) out = NULL;
    g_autofree char *expected = NULL;
    g_autofree char *got = NULL;
    g_autoptr(xmlDoc) reparsed = NULL;
    gsize pos = 0;

    if (splicer->broken)
        return NULL;
    g_array_sort(splicer->edits, edit_compare);
    out = g_string_sized_new(splicer->source->len + 1024);
    for (guint i = 0; i < splicer->edits->len; i++) {
        Edit *edit = &g_array_index(splicer->edits, Edit, i);

        if (edit->offset < pos || edit->offset + edit->remove > splicer->source->len)
            return NULL;
        g_string_append_len(out, splicer->source->text + pos, (gssize)(edit->offset - pos));
        for (guint j = 0; j < edit->nodes->len; j++) {
            g_autofree char *text = dump_node(g_ptr_array_index(edit->nodes, j));
            g_string_append(out, text);
        }
        pos = edit->offset + edit->remove;
    }
    g_string_append_len(out, splicer->source->text + pos, (gssize)(splicer->source->len - pos));

    /* The spliced text must mean exactly what the edited tree means; canonical XML (comments
     * kept) compares elements, attributes, text and comments. */
    reparsed = parse_xml(out->str, out->len, NULL);
    if (reparsed == NULL)
        return NULL;
    expected = canonical(splicer->source->doc);
    got = canonical(reparsed);
    if (expected == NULL || got == NULL || strcmp(expected, got) != 0)
        return NULL;
    return g_string_free(g_steal_pointer(&out), FALSE);
}

/* ------------------------------------------------------------------------------------------ */
/* Numbers as libvirt reads them                                                              */

/* virXMLPropUInt with base 0: "0x" hex, a leading 0 octal, else decimal. */
static gboolean
libvirt_parse_uint(const char *text, guint64 max, guint64 *value, gboolean *octal)
{
    const char *p = text;
    char *end = NULL;
    guint64 v;

    while (g_ascii_isspace(*p))
        p++;
    if (*p == '+')
        p++;
    if (!g_ascii_isdigit(*p))
        return FALSE;
    errno = 0;
    v = g_ascii_strtoull(p, &end, 0);
    if (errno != 0 || end == p || *end != '\0' || v > max)
        return FALSE;
    *value = v;
    if (octal != NULL)
        *octal = p[0] == '0' && g_ascii_isdigit(p[1]);
    return TRUE;
}

/* <address domain bus slot function> of a host source, as libvirt reads it. */
static gboolean
parse_source_address(xmlNodePtr address, ZpcidPciAddress *out, GError **error)
{
    static const char *const names[] = {"domain", "bus", "slot", "function"};
    static const guint64 maxima[] = {G_MAXUINT32, 0xff, 0x1f, 7};
    guint64 values[4] = {0};

    for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
        g_autofree char *text = prop(address, names[i]);
        if (text != NULL && !libvirt_parse_uint(text, maxima[i], &values[i], NULL)) {
            g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                        _("The host PCI address of a device in the domain has the %s “%s”, "
                          "which is not a valid number."),
                        names[i], text);
            return FALSE;
        }
    }
    out->domain = (guint32)values[0];
    out->bus = (guint8)values[1];
    out->slot = (guint8)values[2];
    out->function = (guint8)values[3];
    return TRUE;
}

/* ------------------------------------------------------------------------------------------ */
/* Reading a domain                                                                           */

typedef struct {
    xmlNodePtr root;
    xmlNodePtr devices;
    xmlNodePtr metadata;
    xmlNodePtr ours; /* zpcid's element in <metadata> */
    char *machine;
    ZpcidDomxmlInfo *info;
    GPtrArray *source_devices; /* description of each info->sources entry */
} Domain;

static void
domain_clear(Domain *domain)
{
    g_clear_pointer(&domain->machine, g_free);
    g_clear_pointer(&domain->info, zpcid_domxml_info_free);
    g_clear_pointer(&domain->source_devices, g_ptr_array_unref);
}

/* "disk “vda”", "interface “52:54:00:00:00:01”", … : how messages name a device. */
static char *
describe_device(xmlNodePtr device, guint ordinal)
{
    const char *kind = (const char *)device->name;
    g_autofree char *id = NULL;
    xmlNodePtr child;

    if (node_is(device, "disk") && (child = first_child(device, "target")) != NULL)
        id = prop(child, "dev");
    else if (node_is(device, "interface") && (child = first_child(device, "mac")) != NULL)
        id = prop(child, "address");
    else if (node_is(device, "hostdev") &&
             (child = first_child(first_child(device, "source"), "address")) != NULL) {
        ZpcidPciAddress address;
        if (parse_source_address(child, &address, NULL))
            id = zpcid_pci_address_format(&address);
    } else if (node_is(device, "controller")) {
        g_autofree char *type = prop(device, "type");
        g_autofree char *index = prop(device, "index");
        if (type != NULL)
            id = g_strdup_printf("%s %s", type, index != NULL ? index : "0");
    }
    if (id == NULL && (child = first_child(device, "alias")) != NULL)
        id = prop(child, "name");
    if (id == NULL)
        id = g_strdup_printf("#%u", ordinal);
    return g_strdup_printf("%s “%s”", kind, id);
}

static gboolean
read_zpci(xmlNodePtr zpci, const char *device, ZpcidDomxmlZpci *out, GPtrArray *warnings,
          GError **error)
{
    static const char *const names[] = {"uid", "fid"};
    gboolean *set[] = {&out->uid_set, &out->fid_set};
    guint64 *values[] = {&out->uid, &out->fid};

    for (guint i = 0; i < 2; i++) {
        g_autofree char *text = prop(zpci, names[i]);
        gboolean octal = FALSE;

        if (text == NULL)
            continue;
        if (!libvirt_parse_uint(text, G_MAXUINT32, values[i], &octal)) {
            g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                        _("The device %s has the zPCI %s “%s”, which libvirt cannot read as a "
                          "number; correct the domain first."),
                        device, names[i], text);
            return FALSE;
        }
        *set[i] = TRUE;
        if (octal && warnings != NULL)
            g_ptr_array_add(warnings,
                            g_strdup_printf(_("The device %s has the zPCI %s “%s”, which libvirt "
                                              "reads as octal, that is 0x%" PRIx64
                                              "; write 0x-prefixed hexadecimal instead."),
                                            device, names[i], text, *values[i]));
    }
    if (out->uid_set && (out->uid == 0 || out->uid > ZPCID_UID_MAX) && warnings != NULL)
        g_ptr_array_add(warnings,
                        g_strdup_printf(_("The device %s has the zPCI uid 0x%" PRIx64
                                          ", outside the range 0x1 to 0xffff: libvirt's QEMU "
                                          "driver will refuse the domain."),
                                        device, out->uid));
    if (out->uid_set != out->fid_set && warnings != NULL)
        g_ptr_array_add(warnings,
                        g_strdup_printf(_("The device %s has a zPCI %s but no %s: libvirt "
                                          "chooses the missing id when the domain is defined, "
                                          "and it may collide with an id of a later device; "
                                          "give both."),
                                        device, out->uid_set ? "uid" : "fid",
                                        out->uid_set ? "fid" : "uid"));
    return TRUE;
}

static void
read_intents(xmlNodePtr ours, GArray *intents)
{
    for (xmlNodePtr f = ours->children; f != NULL; f = f->next) {
        ZpcidDomxmlIntent intent = {0};
        g_autofree char *address = NULL, *policy = NULL, *interpretation = NULL;
        g_autofree char *uid = NULL, *fid = NULL;
        guint64 uid_value = 0, fid_value = 0;
        xmlNodePtr verdict;

        if (!node_in_ns(f, ZPCID_LIBVIRT_METADATA_NS, META_FUNCTION))
            continue;
        address = prop(f, "address");
        policy = prop(f, "policy");
        interpretation = prop(f, "interpretation");
        uid = prop(f, "uid");
        fid = prop(f, "fid");
        /* The record is user-editable; an entry that does not parse is not ours to judge. */
        if (address == NULL || !zpcid_pci_address_parse(address, &intent.address, NULL) ||
            !zpcid_zpci_policy_from_string(policy, &intent.policy, NULL) ||
            !zpcid_interpretation_from_string(interpretation, &intent.interpretation, NULL) ||
            uid == NULL || !zpcid_parse_id(uid, ZPCID_UID_MAX, &uid_value, NULL) ||
            fid == NULL || !zpcid_parse_id(fid, ZPCID_FID_MAX, &fid_value, NULL))
            continue;
        intent.ids.uid = (guint32)uid_value;
        intent.ids.fid = (guint32)fid_value;
        intent.verdict_ok = TRUE;
        for (verdict = f->children; verdict != NULL; verdict = verdict->next) {
            if (node_in_ns(verdict, ZPCID_LIBVIRT_METADATA_NS, META_VERDICT)) {
                intent.verdict_ok = prop_is(verdict, "ok", "yes");
                intent.check = prop(verdict, "check");
                break;
            }
        }
        g_array_append_val(intents, intent);
    }
}

/* Reads what zpcid needs from a parsed domain. @warnings may be NULL. */
static gboolean
domain_read(xmlDocPtr doc, Domain *domain, GPtrArray *warnings, GError **error)
{
    xmlNodePtr os, type, launch;
    GHashTable *ordinals;

    memset(domain, 0, sizeof(*domain));
    domain->root = xmlDocGetRootElement(doc);
    if (!node_is(domain->root, "domain")) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                    _("The XML document's root element is “%s”, not a libvirt “domain”."),
                    domain->root != NULL ? (const char *)domain->root->name : "");
        return FALSE;
    }
    domain->info = info_new();
    domain->source_devices = g_ptr_array_new_with_free_func(g_free);
    domain->info->name = node_text(first_child(domain->root, "name"));
    domain->info->uuid = node_text(first_child(domain->root, "uuid"));
    os = first_child(domain->root, "os");
    type = first_child(os, "type");
    if (type != NULL) {
        domain->info->arch = prop(type, "arch");
        domain->machine = prop(type, "machine");
    }
    for (launch = domain->root->children; launch != NULL; launch = launch->next) {
        if (node_is(launch, "launchSecurity") && prop_is(launch, "type", "s390-pv"))
            domain->info->secure_execution = TRUE;
    }
    domain->metadata = first_child(domain->root, "metadata");
    for (xmlNodePtr c = domain->metadata != NULL ? domain->metadata->children : NULL; c != NULL;
         c = c->next) {
        if (node_in_ns(c, ZPCID_LIBVIRT_METADATA_NS, NULL)) {
            domain->ours = c;
            read_intents(c, domain->info->intents);
            break;
        }
    }

    domain->devices = first_child(domain->root, "devices");
    if (domain->devices == NULL)
        return TRUE;
    ordinals = g_hash_table_new(g_str_hash, g_str_equal);
    for (xmlNodePtr dev = domain->devices->children; dev != NULL; dev = dev->next) {
        guint ordinal;
        g_autofree char *desc = NULL;
        xmlNodePtr address = NULL;

        if (dev->type != XML_ELEMENT_NODE)
            continue;
        ordinal = GPOINTER_TO_UINT(g_hash_table_lookup(ordinals, dev->name)) + 1;
        g_hash_table_insert(ordinals, (gpointer)dev->name, GUINT_TO_POINTER(ordinal));
        desc = describe_device(dev, ordinal);

        /* Host sources: what the binder's guard and "already present" look at. */
        if ((node_is(dev, "hostdev") && prop_is(dev, "type", "pci")) ||
            (node_is(dev, "interface") && prop_is(dev, "type", "hostdev"))) {
            xmlNodePtr src_addr = first_child(first_child(dev, "source"), "address");
            g_autofree char *addr_type = src_addr != NULL ? prop(src_addr, "type") : NULL;

            if (src_addr != NULL && (addr_type == NULL || g_str_equal(addr_type, "pci"))) {
                ZpcidDomxmlSource source = {.interface = node_is(dev, "interface"),
                                            .managed = prop_is(dev, "managed", "yes")};
                if (!parse_source_address(src_addr, &source.address, error)) {
                    g_hash_table_unref(ordinals);
                    return FALSE;
                }
                g_array_append_val(domain->info->sources, source);
                g_ptr_array_add(domain->source_devices, g_strdup(desc));
            }
        }

        /* Guest zPCI ids: libvirt reserves them per domain across every device type. */
        for (address = dev->children; address != NULL; address = address->next) {
            xmlNodePtr zpci;
            ZpcidDomxmlZpci entry = {0};

            if (!node_is(address, "address") || !prop_is(address, "type", "pci"))
                continue;
            zpci = first_child(address, "zpci");
            if (zpci == NULL)
                continue;
            if (!read_zpci(zpci, desc, &entry, warnings, error)) {
                g_hash_table_unref(ordinals);
                return FALSE;
            }
            if (entry.uid_set || entry.fid_set) {
                entry.device = g_strdup(desc);
                g_array_append_val(domain->info->zpci, entry);
            }
        }
    }
    g_hash_table_unref(ordinals);
    return TRUE;
}

ZpcidDomxmlInfo *
zpcid_domxml_inspect(const char *domain_xml, GError **error)
{
    Source source;
    Domain domain;
    ZpcidDomxmlInfo *info;

    if (!source_parse(&source, domain_xml, error))
        return NULL;
    if (!domain_read(source.doc, &domain, NULL, error)) {
        domain_clear(&domain);
        source_clear(&source);
        return NULL;
    }
    info = g_steal_pointer(&domain.info);
    domain_clear(&domain);
    source_clear(&source);
    return info;
}

/* ------------------------------------------------------------------------------------------ */
/* Checking the request and choosing ids                                                      */

static char *
function_name(const ZpcidDomxmlFunction *function)
{
    return zpcid_pci_address_format(&function->address);
}

static gboolean
check_request(const ZpcidDomxmlRequest *request, GError **error)
{
    if (request == NULL || request->n_functions == 0 || request->functions == NULL) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                    _("No function was given."));
        return FALSE;
    }
    if ((guint)request->policy > ZPCID_ZPCI_POLICY_EXPLICIT ||
        (guint)request->interpretation > ZPCID_INTERPRETATION_OFF) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                    _("The request names an unknown policy."));
        return FALSE;
    }
    if (request->policy == ZPCID_ZPCI_POLICY_EXPLICIT && request->explicit_ids == NULL) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                    _("The explicit policy needs a uid and a fid for every function."));
        return FALSE;
    }
    for (gsize i = 0; i < request->n_functions; i++) {
        g_autofree char *name = function_name(&request->functions[i]);

        for (gsize j = 0; j < i; j++) {
            if (pci_address_equal(&request->functions[i].address,
                                  &request->functions[j].address)) {
                g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                            _("The function “%s” is given twice."), name);
                return FALSE;
            }
        }
        if (request->policy == ZPCID_ZPCI_POLICY_EXPLICIT) {
            guint32 uid = request->explicit_ids[i].uid;
            if (uid < ZPCID_UID_MIN || uid > ZPCID_UID_MAX) {
                g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                            _("The uid 0x%x given for the function “%s” is outside the range "
                              "0x1 to 0xffff that libvirt and QEMU accept."),
                            uid, name);
                return FALSE;
            }
        }
    }
    return TRUE;
}

static gboolean
check_arch(Domain *domain, GError **error)
{
    const char *arch = domain->info->arch;

    if (arch != NULL && !g_str_equal(arch, "s390x")) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_UNSUPPORTED,
                    _("The domain is for the architecture “%s”, but zPCI addresses exist only "
                      "on s390x."),
                    arch);
        return FALSE;
    }
    /* Without an arch libvirt takes the host's, which is s390x where zpcid runs; the machine
     * type still gives other guests away. */
    if (arch == NULL && domain->machine != NULL && !g_str_has_prefix(domain->machine, "s390")) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_UNSUPPORTED,
                    _("The domain's machine type “%s” is not an s390x machine, but zPCI "
                      "addresses exist only on s390x."),
                    domain->machine);
        return FALSE;
    }
    return TRUE;
}

static gboolean
check_interpretation(const ZpcidDomxmlRequest *request, gboolean secure_execution,
                     GPtrArray *warnings, GError **error)
{
    const ZpcidInterpretationVerdict *verdict = &request->verdict;
    const char *check = verdict->check != NULL ? verdict->check : "unknown";
    const char *summary = verdict->summary != NULL ? verdict->summary : "";
    const char *remedy = verdict->remedy != NULL ? verdict->remedy : "";

    if (request->interpretation == ZPCID_INTERPRETATION_OFF)
        return TRUE;
    if (!verdict->ok) {
        if (request->interpretation == ZPCID_INTERPRETATION_REQUIRED) {
            g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_NOT_READY,
                        _("zPCI interpretation is required, but this host fails the check "
                          "“%s”: %s Remedy: %s"),
                        check, summary, remedy);
            return FALSE;
        }
        g_ptr_array_add(warnings,
                        g_strdup_printf(_("zPCI interpretation is not available on this host, "
                                          "so QEMU will silently pass the functions through "
                                          "intercepted; the check “%s” fails: %s Remedy: %s"),
                                        check, summary, remedy));
    }
    if (secure_execution) {
        if (request->interpretation == ZPCID_INTERPRETATION_REQUIRED) {
            g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_UNSUPPORTED,
                        _("The domain uses IBM Secure Execution (launchSecurity type "
                          "“s390-pv”), which QEMU runs without zPCI interpretation; ask for "
                          "interpretation preferred or off to pass the functions through "
                          "intercepted."));
            return FALSE;
        }
        g_ptr_array_add(warnings,
                        g_strdup(_("The domain uses IBM Secure Execution (launchSecurity type "
                                   "“s390-pv”), so QEMU will pass the functions through "
                                   "intercepted, not interpreted.")));
    }
    return TRUE;
}

static gboolean
check_mirror(const ZpcidDomxmlFunction *function, GError **error)
{
    g_autofree char *name = function_name(function);

    if (!function->uid_checking) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_NOT_READY,
                    _("The mirror policy cannot be used for the function “%s”: UID checking is "
                      "off on this host, so host uids are not unique and may be missing. Enable "
                      "UID checking for the LPAR in the HMC, or use the policy auto or "
                      "explicit."),
                    name);
        return FALSE;
    }
    if (!function->uid_known) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_NOT_READY,
                    _("The mirror policy cannot be used for the function “%s” because its host "
                      "uid is not known; use the policy auto or explicit."),
                    name);
        return FALSE;
    }
    if (function->uid < ZPCID_UID_MIN || function->uid > ZPCID_UID_MAX) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_NOT_READY,
                    _("The mirror policy cannot be used for the function “%s”: its host uid "
                      "0x%x is outside the range 0x1 to 0xffff that a guest can have; use the "
                      "policy auto or explicit."),
                    name, function->uid);
        return FALSE;
    }
    return TRUE;
}

static gboolean
check_not_present(const ZpcidDomxmlRequest *request, Domain *domain, GError **error)
{
    for (gsize i = 0; i < request->n_functions; i++) {
        for (guint j = 0; j < domain->info->sources->len; j++) {
            const ZpcidDomxmlSource *source =
                &g_array_index(domain->info->sources, ZpcidDomxmlSource, j);

            if (pci_address_equal(&source->address, &request->functions[i].address)) {
                g_autofree char *name = function_name(&request->functions[i]);
                g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_CONFLICT,
                            _("The function “%s” is already in this domain, as the device %s."),
                            name, (const char *)g_ptr_array_index(domain->source_devices, j));
                return FALSE;
            }
        }
    }
    return TRUE;
}

/* id -> description of its holder. */
typedef struct {
    GHashTable *uids;
    GHashTable *fids;
} IdTable;

static void
id_table_init(IdTable *table)
{
    table->uids = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
    table->fids = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
}

static void
id_table_clear(IdTable *table)
{
    g_clear_pointer(&table->uids, g_hash_table_unref);
    g_clear_pointer(&table->fids, g_hash_table_unref);
}

static const char *
id_holder(GHashTable *table, guint32 id)
{
    return g_hash_table_lookup(table, GUINT_TO_POINTER(id));
}

static void
id_take(GHashTable *table, guint32 id, const char *holder)
{
    if (!g_hash_table_contains(table, GUINT_TO_POINTER(id)))
        g_hash_table_insert(table, GUINT_TO_POINTER(id), g_strdup(holder));
}

/* Lowest id from @from not in @table; FALSE if none is left. */
static gboolean
id_lowest_free(GHashTable *table, guint64 from, guint64 max, guint32 *id)
{
    for (guint64 v = from; v <= max; v++) {
        if (!g_hash_table_contains(table, GUINT_TO_POINTER((guint32)v))) {
            *id = (guint32)v;
            return TRUE;
        }
    }
    return FALSE;
}

static gboolean
id_lowest_free_of_two(GHashTable *a, GHashTable *b, guint64 from, guint64 max, guint32 *id)
{
    for (guint64 v = from; v <= max; v++) {
        if (!g_hash_table_contains(a, GUINT_TO_POINTER((guint32)v)) &&
            !g_hash_table_contains(b, GUINT_TO_POINTER((guint32)v))) {
            *id = (guint32)v;
            return TRUE;
        }
    }
    return FALSE;
}

/* Fills @table from the domain: explicit ids, then the ids libvirt will give devices that have
 * only one of them (lowest free, in device order), so that auto ids avoid both. */
static void
id_table_fill(IdTable *table, Domain *domain, GPtrArray *warnings)
{
    GArray *zpci = domain->info->zpci;

    for (guint i = 0; i < zpci->len; i++) {
        ZpcidDomxmlZpci *entry = &g_array_index(zpci, ZpcidDomxmlZpci, i);
        const char *other;

        if (entry->uid_set) {
            other = id_holder(table->uids, (guint32)entry->uid);
            if (other != NULL && warnings != NULL)
                g_ptr_array_add(warnings,
                                g_strdup_printf(_("The devices %s and %s of the domain have the "
                                                  "same zPCI uid 0x%04" PRIx64
                                                  ": libvirt will refuse the domain."),
                                                other, entry->device, entry->uid));
            id_take(table->uids, (guint32)entry->uid, entry->device);
        }
        if (entry->fid_set) {
            other = id_holder(table->fids, (guint32)entry->fid);
            if (other != NULL && warnings != NULL)
                g_ptr_array_add(warnings,
                                g_strdup_printf(_("The devices %s and %s of the domain have the "
                                                  "same zPCI fid 0x%08" PRIx64
                                                  ": libvirt will refuse the domain."),
                                                other, entry->device, entry->fid));
            id_take(table->fids, (guint32)entry->fid, entry->device);
        }
    }
    for (guint i = 0; i < zpci->len; i++) {
        ZpcidDomxmlZpci *entry = &g_array_index(zpci, ZpcidDomxmlZpci, i);
        guint32 id;

        if (entry->uid_set && !entry->fid_set &&
            id_lowest_free(table->fids, 0, ZPCID_FID_MAX, &id))
            id_take(table->fids, id, entry->device);
        if (entry->fid_set && !entry->uid_set &&
            id_lowest_free(table->uids, ZPCID_UID_MIN, ZPCID_UID_MAX, &id))
            id_take(table->uids, id, entry->device);
    }
}

static gboolean
choose_ids(const ZpcidDomxmlRequest *request, Domain *domain, GArray *ids, GPtrArray *warnings,
           GError **error)
{
    IdTable table;    /* held by devices of the domain */
    IdTable requested; /* given to functions of this request */
    gboolean ok = FALSE;

    id_table_init(&table);
    id_table_init(&requested);
    if (domain != NULL)
        id_table_fill(&table, domain, warnings);

    for (gsize i = 0; i < request->n_functions; i++) {
        const ZpcidDomxmlFunction *function = &request->functions[i];
        g_autofree char *name = function_name(function);
        ZpcidZpciIds chosen = {0};
        const char *other;

        switch (request->policy) {
        case ZPCID_ZPCI_POLICY_MIRROR:
            chosen.uid = function->uid;
            chosen.fid = function->fid;
            break;
        case ZPCID_ZPCI_POLICY_EXPLICIT:
            chosen = request->explicit_ids[i];
            break;
        case ZPCID_ZPCI_POLICY_AUTO:
            if (!id_lowest_free_of_two(table.uids, requested.uids, ZPCID_UID_MIN, ZPCID_UID_MAX,
                                       &chosen.uid)) {
                g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_CONFLICT,
                            _("No zPCI uid is left free in this domain for the function “%s”."),
                            name);
                goto out;
            }
            if (!id_lowest_free_of_two(table.fids, requested.fids, 0, ZPCID_FID_MAX,
                                       &chosen.fid)) {
                g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_CONFLICT,
                            _("No zPCI fid is left free in this domain for the function “%s”."),
                            name);
                goto out;
            }
            break;
        }

        other = id_holder(requested.uids, chosen.uid);
        if (other != NULL) {
            g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_CONFLICT,
                        _("The zPCI uid 0x%04x is requested for both functions “%s” and “%s”."),
                        chosen.uid, other, name);
            goto out;
        }
        other = id_holder(requested.fids, chosen.fid);
        if (other != NULL) {
            g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_CONFLICT,
                        _("The zPCI fid 0x%08x is requested for both functions “%s” and “%s”."),
                        chosen.fid, other, name);
            goto out;
        }
        other = id_holder(table.uids, chosen.uid);
        if (other != NULL) {
            g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_CONFLICT,
                        _("The zPCI uid 0x%04x for the function “%s” is already used by the "
                          "device %s of this domain."),
                        chosen.uid, name, other);
            goto out;
        }
        other = id_holder(table.fids, chosen.fid);
        if (other != NULL) {
            g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_CONFLICT,
                        _("The zPCI fid 0x%08x for the function “%s” is already used by the "
                          "device %s of this domain."),
                        chosen.fid, name, other);
            goto out;
        }
        id_take(requested.uids, chosen.uid, name);
        id_take(requested.fids, chosen.fid, name);
        g_array_append_val(ids, chosen);
    }
    ok = TRUE;
out:
    id_table_clear(&table);
    id_table_clear(&requested);
    return ok;
}

/* Everything that can refuse the request. @domain is NULL for fragments without a domain. */
static gboolean
plan(const ZpcidDomxmlRequest *request, Domain *domain, GArray *ids, GPtrArray *warnings,
     GError **error)
{
    if (!check_request(request, error))
        return FALSE;
    if (domain != NULL && !check_arch(domain, error))
        return FALSE;
    if (!check_interpretation(request, domain != NULL && domain->info->secure_execution,
                              warnings, error))
        return FALSE;
    if (request->policy == ZPCID_ZPCI_POLICY_MIRROR) {
        for (gsize i = 0; i < request->n_functions; i++) {
            if (!check_mirror(&request->functions[i], error))
                return FALSE;
        }
    }
    if (domain != NULL && !check_not_present(request, domain, error))
        return FALSE;
    return choose_ids(request, domain, ids, warnings, error);
}

/* ------------------------------------------------------------------------------------------ */
/* Building nodes                                                                             */

static xmlNodePtr
build_hostdev(xmlDocPtr doc, const ZpcidDomxmlFunction *function, const ZpcidZpciIds *ids)
{
    xmlNodePtr hostdev = xmlNewDocNode(doc, NULL, (const xmlChar *)"hostdev", NULL);
    xmlNodePtr driver, source, address, guest, zpci;

    set_prop(hostdev, "mode", "subsystem");
    set_prop(hostdev, "type", "pci");
    set_prop(hostdev, "managed", function->managed ? "yes" : "no");
    /* libvirt 9.0 needs the driver name to build the command line ("invalid PCI passthrough
     * type 'default'"). */
    driver = new_child(hostdev, "driver");
    set_prop(driver, "name", "vfio");
    source = new_child(hostdev, "source");
    address = new_child(source, "address");
    /* Always 0x: libvirt reads a leading 0 as octal. */
    set_propf(address, "domain", "0x%04x", function->address.domain);
    set_propf(address, "bus", "0x%02x", function->address.bus);
    set_propf(address, "slot", "0x%02x", function->address.slot);
    set_propf(address, "function", "0x%x", function->address.function);
    /* Bus and slot are left to libvirt (the guest sees neither); it keeps PCI domain 0. */
    guest = new_child(hostdev, "address");
    set_prop(guest, "type", "pci");
    zpci = new_child(guest, "zpci");
    set_propf(zpci, "uid", "0x%04x", ids->uid);
    set_propf(zpci, "fid", "0x%08x", ids->fid);
    return hostdev;
}

static xmlNodePtr
build_intent(xmlDocPtr doc, xmlNsPtr ns, const ZpcidDomxmlRequest *request, gsize index,
             const ZpcidZpciIds *ids)
{
    const ZpcidDomxmlFunction *function = &request->functions[index];
    const ZpcidInterpretationVerdict *verdict = &request->verdict;
    xmlNodePtr entry = xmlNewDocNode(doc, ns, (const xmlChar *)META_FUNCTION, NULL);
    xmlNodePtr v;
    g_autofree char *address = function_name(function);

    set_prop(entry, "address", address);
    set_propf(entry, "host-fid", "0x%08x", function->fid);
    if (function->uid_known)
        set_propf(entry, "host-uid", "0x%04x", function->uid);
    set_propf(entry, "uid", "0x%04x", ids->uid);
    set_propf(entry, "fid", "0x%08x", ids->fid);
    set_prop(entry, "policy", zpcid_zpci_policy_to_string(request->policy));
    set_prop(entry, "interpretation", zpcid_interpretation_to_string(request->interpretation));
    /* With interpretation off the host's verdict is irrelevant and may not have been asked. */
    if (request->interpretation == ZPCID_INTERPRETATION_OFF)
        return entry;
    v = xmlNewChild(entry, ns, (const xmlChar *)META_VERDICT, NULL);
    set_prop(v, "ok", verdict->ok ? "yes" : "no");
    if (!verdict->ok) {
        if (verdict->check != NULL)
            set_prop(v, "check", verdict->check);
        if (verdict->summary != NULL)
            set_prop(v, "summary", verdict->summary);
        if (verdict->remedy != NULL)
            set_prop(v, "remedy", verdict->remedy);
    }
    return entry;
}

static xmlNodePtr
build_ours(xmlDocPtr doc, const ZpcidDomxmlRequest *request, GArray *ids)
{
    xmlNodePtr ours = xmlNewDocNode(doc, NULL, (const xmlChar *)META_ROOT, NULL);
    xmlNsPtr ns = xmlNewNs(ours, (const xmlChar *)ZPCID_LIBVIRT_METADATA_NS,
                           (const xmlChar *)ZPCID_LIBVIRT_METADATA_PREFIX);

    xmlSetNs(ours, ns);
    set_prop(ours, "version", META_VERSION);
    for (gsize i = 0; i < request->n_functions; i++)
        xmlAddChild(ours, build_intent(doc, ns, request, i,
                                       &g_array_index(ids, ZpcidZpciIds, i)));
    return ours;
}

/* Drops entries of @ours for the requested functions (stale records of earlier passthroughs)
 * and appends the new ones, laid out like the existing entries. */
static void
update_ours(xmlNodePtr ours, const ZpcidDomxmlRequest *request, GArray *ids)
{
    xmlNsPtr ns = ours->ns;
    const char *ws;
    g_autofree char *indent = NULL;
    xmlNodePtr last;

    for (xmlNodePtr c = ours->children; c != NULL;) {
        xmlNodePtr next = c->next;
        g_autofree char *address = NULL;
        ZpcidPciAddress parsed;

        if (node_in_ns(c, ZPCID_LIBVIRT_METADATA_NS, META_FUNCTION) &&
            (address = prop(c, "address")) != NULL &&
            zpcid_pci_address_parse(address, &parsed, NULL)) {
            for (gsize i = 0; i < request->n_functions; i++) {
                if (pci_address_equal(&parsed, &request->functions[i].address)) {
                    if (c->prev != NULL && xmlIsBlankNode(c->prev)) {
                        xmlNodePtr blank = c->prev;
                        xmlUnlinkNode(blank);
                        xmlFreeNode(blank);
                    }
                    xmlUnlinkNode(c);
                    xmlFreeNode(c);
                    break;
                }
            }
        }
        c = next;
    }

    last = last_element_child(ours, NULL);
    ws = last != NULL ? leading_ws(last) : NULL;
    if (last == NULL) {
        /* Only whitespace (or nothing) is left: lay the element out afresh. */
        for (xmlNodePtr c = ours->children; c != NULL;) {
            xmlNodePtr next = c->next;
            if (xmlIsBlankNode(c)) {
                xmlUnlinkNode(c);
                xmlFreeNode(c);
            }
            c = next;
        }
        for (gsize i = 0; i < request->n_functions; i++)
            xmlAddChild(ours, build_intent(ours->doc, ns, request, i,
                                           &g_array_index(ids, ZpcidZpciIds, i)));
        if (leading_ws(ours) != NULL)
            indent_tree(ours, indent_of(leading_ws(ours)));
        return;
    }
    indent = g_strdup(indent_of(ws));
    for (gsize i = 0; i < request->n_functions; i++) {
        xmlNodePtr entry = build_intent(ours->doc, ns, request, i,
                                        &g_array_index(ids, ZpcidZpciIds, i));
        if (ws != NULL) {
            last = xmlAddNextSibling(last, new_text(ours->doc, ws));
            indent_tree(entry, indent);
        }
        last = xmlAddNextSibling(last, entry);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Merging                                                                                    */

static void
merge_hostdevs(Splicer *splicer, Domain *domain, const ZpcidDomxmlRequest *request, GArray *ids)
{
    xmlDocPtr doc = splicer->source->doc;
    g_autoptr(GPtrArray) nodes = g_ptr_array_new();
    xmlNodePtr ref;
    const char *ws;

    ref = NULL;
    if (domain->devices != NULL) {
        ref = last_element_child(domain->devices, "hostdev");
        if (ref == NULL)
            ref = last_element_child(domain->devices, NULL);
    }

    if (domain->devices != NULL && ref != NULL) {
        /* After the last hostdev (or device), indented like it. */
        ws = leading_ws(ref);
        for (gsize i = 0; i < request->n_functions; i++) {
            xmlNodePtr hostdev = build_hostdev(doc, &request->functions[i],
                                               &g_array_index(ids, ZpcidZpciIds, i));
            if (ws != NULL) {
                g_ptr_array_add(nodes, new_text(doc, ws));
                indent_tree(hostdev, indent_of(ws));
            }
            g_ptr_array_add(nodes, hostdev);
        }
        insert_after(splicer, ref, (xmlNodePtr *)nodes->pdata, nodes->len);
        return;
    }

    if (domain->devices != NULL) {
        /* <devices/> or only whitespace and comments: write the element anew. */
        for (xmlNodePtr c = domain->devices->children; c != NULL;) {
            xmlNodePtr next = c->next;
            if (xmlIsBlankNode(c)) {
                xmlUnlinkNode(c);
                xmlFreeNode(c);
            }
            c = next;
        }
        for (gsize i = 0; i < request->n_functions; i++)
            xmlAddChild(domain->devices, build_hostdev(doc, &request->functions[i],
                                                       &g_array_index(ids, ZpcidZpciIds, i)));
        ws = leading_ws(domain->devices);
        if (ws != NULL)
            indent_tree(domain->devices, indent_of(ws));
        rewrite_element(splicer, domain->devices);
        return;
    }

    /* No <devices> at all: a new one after the domain's last element. */
    domain->devices = xmlNewDocNode(doc, NULL, (const xmlChar *)"devices", NULL);
    for (gsize i = 0; i < request->n_functions; i++)
        xmlAddChild(domain->devices, build_hostdev(doc, &request->functions[i],
                                                   &g_array_index(ids, ZpcidZpciIds, i)));
    ref = last_element_child(domain->root, NULL);
    if (ref == NULL) {
        xmlAddChild(domain->root, domain->devices);
        rewrite_element(splicer, domain->root);
        return;
    }
    ws = leading_ws(ref);
    if (ws != NULL) {
        g_ptr_array_add(nodes, new_text(doc, ws));
        indent_tree(domain->devices, indent_of(ws));
    }
    g_ptr_array_add(nodes, domain->devices);
    insert_after(splicer, ref, (xmlNodePtr *)nodes->pdata, nodes->len);
}

static void
merge_metadata(Splicer *splicer, Domain *domain, const ZpcidDomxmlRequest *request, GArray *ids)
{
    xmlDocPtr doc = splicer->source->doc;
    xmlNodePtr nodes[2];
    guint n = 0;
    xmlNodePtr ref;
    const char *ws;

    if (domain->ours != NULL) {
        update_ours(domain->ours, request, ids);
        rewrite_element(splicer, domain->ours);
        return;
    }
    if (domain->metadata != NULL) {
        domain->ours = build_ours(doc, request, ids);
        ref = last_element_child(domain->metadata, NULL);
        if (ref == NULL) {
            for (xmlNodePtr c = domain->metadata->children; c != NULL;) {
                xmlNodePtr next = c->next;
                if (xmlIsBlankNode(c)) {
                    xmlUnlinkNode(c);
                    xmlFreeNode(c);
                }
                c = next;
            }
            xmlAddChild(domain->metadata, domain->ours);
            if ((ws = leading_ws(domain->metadata)) != NULL)
                indent_tree(domain->metadata, indent_of(ws));
            rewrite_element(splicer, domain->metadata);
            return;
        }
        ws = leading_ws(ref);
        if (ws != NULL) {
            nodes[n++] = new_text(doc, ws);
            indent_tree(domain->ours, indent_of(ws));
        }
        nodes[n++] = domain->ours;
        insert_after(splicer, ref, nodes, n);
        return;
    }

    /* A new <metadata> where libvirt writes it: after name, uuid, title and description. */
    domain->metadata = xmlNewDocNode(doc, NULL, (const xmlChar *)"metadata", NULL);
    domain->ours = build_ours(doc, request, ids);
    xmlAddChild(domain->metadata, domain->ours);
    ref = NULL;
    for (xmlNodePtr c = domain->root->children; c != NULL; c = c->next) {
        if (node_is(c, "name") || node_is(c, "uuid") || node_is(c, "genid") ||
            node_is(c, "title") || node_is(c, "description"))
            ref = c;
    }
    if (ref == NULL)
        ref = last_element_child(domain->root, NULL);
    if (ref == NULL) {
        xmlAddChild(domain->root, domain->metadata);
        rewrite_element(splicer, domain->root);
        return;
    }
    ws = leading_ws(ref);
    if (ws != NULL) {
        nodes[n++] = new_text(doc, ws);
        indent_tree(domain->metadata, indent_of(ws));
    }
    nodes[n++] = domain->metadata;
    insert_after(splicer, ref, nodes, n);
}

static void
fill_fragments(ZpcidDomxmlResult *result, const ZpcidDomxmlRequest *request)
{
    for (gsize i = 0; i < request->n_functions; i++) {
        g_autoptr(xmlDoc) doc = xmlNewDoc((const xmlChar *)"1.0");
        xmlNodePtr hostdev = build_hostdev(doc, &request->functions[i],
                                           &g_array_index(result->ids, ZpcidZpciIds, i));
        g_autofree char *text = NULL;

        xmlDocSetRootElement(doc, hostdev);
        indent_tree(hostdev, "");
        text = dump_node(hostdev);
        g_ptr_array_add(result->hostdevs, g_strconcat(text, "\n", NULL));
    }
}

static void
strip_blanks(xmlNodePtr node)
{
    for (xmlNodePtr c = node->children; c != NULL;) {
        xmlNodePtr next = c->next;
        if (xmlIsBlankNode(c)) {
            xmlUnlinkNode(c);
            xmlFreeNode(c);
        } else if (c->type == XML_ELEMENT_NODE) {
            strip_blanks(c);
        }
        c = next;
    }
}

/* zpcid's metadata element as a document of its own, laid out from column 0 whatever its
 * place in the domain was. */
static char *
metadata_text(xmlNodePtr ours)
{
    g_autoptr(xmlDoc) doc = xmlNewDoc((const xmlChar *)"1.0");
    xmlNodePtr copy = xmlDocCopyNode(ours, doc, 1);
    g_autofree char *text = NULL;

    xmlDocSetRootElement(doc, copy);
    strip_blanks(copy);
    indent_tree(copy, "");
    text = dump_node(copy);
    return g_strconcat(text, "\n", NULL);
}

static void
drop_namespace(xmlNodePtr node, const char *href)
{
    if (node->ns != NULL && g_strcmp0((const char *)node->ns->href, href) == 0)
        xmlSetNs(node, NULL);
    for (xmlNodePtr c = node->children; c != NULL; c = c->next) {
        if (c->type == XML_ELEMENT_NODE)
            drop_namespace(c, href);
    }
}

char *
zpcid_domxml_metadata_for_libvirt(const char *metadata, GError **error)
{
    Source source;
    xmlNodePtr root;
    xmlNsPtr *link;
    char *text;

    if (!source_parse(&source, metadata, error))
        return NULL;
    root = xmlDocGetRootElement(source.doc);
    if (!node_in_ns(root, ZPCID_LIBVIRT_METADATA_NS, META_ROOT)) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                    _("The metadata is not zpcid's “%s” element in the namespace “%s”."),
                    META_ROOT, ZPCID_LIBVIRT_METADATA_NS);
        source_clear(&source);
        return NULL;
    }
    drop_namespace(root, ZPCID_LIBVIRT_METADATA_NS);
    /* The declaration goes too, now that nothing uses it. */
    for (link = &root->nsDef; *link != NULL; link = &(*link)->next) {
        if (g_strcmp0((const char *)(*link)->href, ZPCID_LIBVIRT_METADATA_NS) == 0) {
            xmlNsPtr dead = *link;
            *link = dead->next;
            dead->next = NULL;
            xmlFreeNs(dead);
            break;
        }
    }
    text = dump_node(root);
    source_clear(&source);
    return text;
}

ZpcidDomxmlResult *
zpcid_domxml_build_hostdevs(const ZpcidDomxmlRequest *request, const char *domain_xml,
                            GError **error)
{
    g_autoptr(ZpcidDomxmlResult) result = result_new();
    Source source = {0};
    Domain domain = {0};
    gboolean have_domain = domain_xml != NULL;
    gboolean ok;

    if (have_domain && (!source_parse(&source, domain_xml, error) ||
                        !domain_read(source.doc, &domain, result->warnings, error))) {
        domain_clear(&domain);
        source_clear(&source);
        return NULL;
    }
    ok = plan(request, have_domain ? &domain : NULL, result->ids, result->warnings, error);
    if (ok) {
        fill_fragments(result, request);
        if (have_domain && domain.ours != NULL) {
            update_ours(domain.ours, request, result->ids);
            result->metadata = metadata_text(domain.ours);
        } else {
            g_autoptr(xmlDoc) doc = xmlNewDoc((const xmlChar *)"1.0");
            xmlNodePtr ours = build_ours(doc, request, result->ids);
            xmlDocSetRootElement(doc, ours);
            result->metadata = metadata_text(ours);
        }
    }
    domain_clear(&domain);
    source_clear(&source);
    return ok ? g_steal_pointer(&result) : NULL;
}

ZpcidDomxmlResult *
zpcid_domxml_merge(const ZpcidDomxmlRequest *request, const char *domain_xml, GError **error)
{
    g_autoptr(ZpcidDomxmlResult) result = result_new();
    Source source = {0};
    Domain domain = {0};
    Splicer splicer = {0};
    gboolean ok = FALSE;

    if (!source_parse(&source, domain_xml, error))
        return NULL;
    if (!domain_read(source.doc, &domain, result->warnings, error) ||
        !plan(request, &domain, result->ids, result->warnings, error))
        goto out;

    splicer_init(&splicer, &source);
    merge_hostdevs(&splicer, &domain, request, result->ids);
    merge_metadata(&splicer, &domain, request, result->ids);
    result->xml = splicer_output(&splicer);
    if (result->xml == NULL) {
        /* Not expected; the meaning is kept, only quoting and spacing inside tags change. */
        result->xml = dump_doc(source.doc, g_str_has_prefix(source.text, "<?xml"));
        g_ptr_array_add(result->warnings,
                        g_strdup(_("The domain XML was written out anew, so quoting and spacing "
                                   "inside tags may differ from the original.")));
    }
    fill_fragments(result, request);
    result->metadata = metadata_text(domain.ours);
    ok = TRUE;
out:
    splicer_clear(&splicer);
    domain_clear(&domain);
    source_clear(&source);
    return ok ? g_steal_pointer(&result) : NULL;
}

ZpcidDomxmlResult *
zpcid_domxml_new_domain(const ZpcidDomxmlRequest *request, const ZpcidDomxmlDomainParams *params,
                        GError **error)
{
    g_autoptr(ZpcidDomxmlResult) result = result_new();
    g_autoptr(xmlDoc) doc = NULL;
    xmlNodePtr root, node, os, type, metadata, devices;
    g_autofree char *text = NULL;
    char buf[32];

    if (params == NULL || params->name == NULL || params->name[0] == '\0' ||
        strchr(params->name, '/') != NULL || !g_utf8_validate(params->name, -1, NULL)) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                    _("A new domain needs a name without “/”."));
        return NULL;
    }
    if (!plan(request, NULL, result->ids, result->warnings, error))
        return NULL;

    doc = xmlNewDoc((const xmlChar *)"1.0");
    root = xmlNewDocNode(doc, NULL, (const xmlChar *)"domain", NULL);
    xmlDocSetRootElement(doc, root);
    set_prop(root, "type", params->type != NULL ? params->type : "kvm");
    node = new_child(root, "name");
    xmlNodeAddContent(node, (const xmlChar *)params->name);
    metadata = new_child(root, "metadata");
    xmlAddChild(metadata, build_ours(doc, request, result->ids));
    node = new_child(root, "memory");
    set_prop(node, "unit", "MiB");
    g_snprintf(buf, sizeof(buf), "%u", params->memory_mib != 0 ? params->memory_mib : 1024);
    xmlNodeAddContent(node, (const xmlChar *)buf);
    node = new_child(root, "vcpu");
    g_snprintf(buf, sizeof(buf), "%u", params->vcpus != 0 ? params->vcpus : 1);
    xmlNodeAddContent(node, (const xmlChar *)buf);
    os = new_child(root, "os");
    type = new_child(os, "type");
    set_prop(type, "arch", "s390x");
    set_prop(type, "machine", params->machine != NULL ? params->machine : "s390-ccw-virtio");
    xmlNodeAddContent(type, (const xmlChar *)"hvm");
    devices = new_child(root, "devices");
    if (params->emulator != NULL) {
        node = new_child(devices, "emulator");
        xmlNodeAddContent(node, (const xmlChar *)params->emulator);
    }
    for (gsize i = 0; i < request->n_functions; i++)
        xmlAddChild(devices, build_hostdev(doc, &request->functions[i],
                                           &g_array_index(result->ids, ZpcidZpciIds, i)));
    indent_tree(root, "");
    text = dump_node(root);
    result->xml = g_strconcat(text, "\n", NULL);
    fill_fragments(result, request);
    result->metadata = metadata_text(last_element_child(metadata, NULL));
    return g_steal_pointer(&result);
}

/* ------------------------------------------------------------------------------------------ */
/* RNG validation                                                                             */

const char *
zpcid_domxml_schema_dir(void)
{
    const char *dir = g_getenv(ZPCID_ENV_LIBVIRT_SCHEMA_DIR);
    return dir != NULL && dir[0] != '\0' ? dir : ZPCID_DEFAULT_LIBVIRT_SCHEMA_DIR;
}

static void
collect_error_cb(void *data, xmlErrorPtr err)
{
    GPtrArray *messages = data;

    if (err == NULL || err->message == NULL || messages->len >= 5)
        return;
    g_ptr_array_add(messages, g_strstrip(g_strdup_printf(
                                  "%s%s%s", err->node != NULL ? "element " : "",
                                  err->node != NULL ? (const char *)((xmlNodePtr)err->node)->name
                                                    : "",
                                  err->message)));
}

/* The parsed schema is kept: libvirt's is large and read-only once loaded. Validation runs
 * under the same lock because libxml2 does not promise that concurrent use is safe. */
static GMutex schema_lock;
static xmlRelaxNGPtr schema_cached;
static char *schema_cached_path;

static char *
join_messages(GPtrArray *messages)
{
    g_ptr_array_add(messages, NULL);
    return g_strjoinv("; ", (char **)messages->pdata);
}

static xmlDocPtr
wrap_hostdev(xmlDocPtr fragment)
{
    xmlDocPtr doc = xmlNewDoc((const xmlChar *)"1.0");
    xmlNodePtr root = xmlNewDocNode(doc, NULL, (const xmlChar *)"domain", NULL);
    xmlNodePtr node, os, type, devices;

    /* libvirt has no schema for a lone device (virt-xml-validate: "cannot determine schema
     * type"), so the device is checked inside the smallest domain. */
    xmlDocSetRootElement(doc, root);
    set_prop(root, "type", "kvm");
    node = new_child(root, "name");
    xmlNodeAddContent(node, (const xmlChar *)"zpcid-validate");
    node = new_child(root, "memory");
    xmlNodeAddContent(node, (const xmlChar *)"1048576");
    os = new_child(root, "os");
    type = new_child(os, "type");
    set_prop(type, "arch", "s390x");
    xmlNodeAddContent(type, (const xmlChar *)"hvm");
    devices = new_child(root, "devices");
    xmlAddChild(devices, xmlDocCopyNode(xmlDocGetRootElement(fragment), doc, 1));
    return doc;
}

ZpcidDomxmlSchemaResult
zpcid_domxml_validate(const char *xml, GError **error)
{
    g_autofree char *path = g_build_filename(zpcid_domxml_schema_dir(), "domain.rng", NULL);
    g_autoptr(GPtrArray) messages = g_ptr_array_new_with_free_func(g_free);
    Source source;
    g_autoptr(xmlDoc) wrapped = NULL;
    xmlDocPtr doc;
    xmlNodePtr root;
    xmlRelaxNGValidCtxtPtr vctxt;
    int rc;

    if (!g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_NOT_FOUND,
                    _("libvirt's XML schemas are not installed (“%s” does not exist), so the "
                      "document was not checked against them."),
                    path);
        return ZPCID_DOMXML_SCHEMA_NOT_INSTALLED;
    }
    if (!source_parse(&source, xml, error))
        return ZPCID_DOMXML_SCHEMA_INVALID;
    doc = source.doc;
    root = xmlDocGetRootElement(doc);
    if (node_is(root, "hostdev")) {
        wrapped = wrap_hostdev(doc);
        doc = wrapped;
    } else if (!node_is(root, "domain")) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                    _("The XML document's root element is “%s”, not a libvirt “domain” or "
                      "“hostdev”."),
                    root != NULL ? (const char *)root->name : "");
        source_clear(&source);
        return ZPCID_DOMXML_SCHEMA_INVALID;
    }

    g_mutex_lock(&schema_lock);
    if (schema_cached == NULL || g_strcmp0(schema_cached_path, path) != 0) {
        xmlRelaxNGParserCtxtPtr pctxt = xmlRelaxNGNewParserCtxt(path);

        g_clear_pointer(&schema_cached, xmlRelaxNGFree);
        g_clear_pointer(&schema_cached_path, g_free);
        xmlRelaxNGSetParserStructuredErrors(pctxt, collect_error_cb, messages);
        schema_cached = xmlRelaxNGParse(pctxt);
        xmlRelaxNGFreeParserCtxt(pctxt);
        if (schema_cached == NULL) {
            g_autofree char *joined = join_messages(messages);
            g_mutex_unlock(&schema_lock);
            g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_FAILED,
                        _("libvirt's schema “%s” could not be loaded: %s."), path, joined);
            source_clear(&source);
            return ZPCID_DOMXML_SCHEMA_INVALID;
        }
        schema_cached_path = g_strdup(path);
    }
    vctxt = xmlRelaxNGNewValidCtxt(schema_cached);
    xmlRelaxNGSetValidStructuredErrors(vctxt, collect_error_cb, messages);
    rc = xmlRelaxNGValidateDoc(vctxt, doc);
    xmlRelaxNGFreeValidCtxt(vctxt);
    g_mutex_unlock(&schema_lock);
    source_clear(&source);

    if (rc != 0) {
        g_autofree char *joined = NULL;
        if (messages->len == 0)
            g_ptr_array_add(messages, g_strdup("no details"));
        joined = join_messages(messages);
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                    _("The XML document does not match libvirt's schema “%s”: %s."), path,
                    joined);
        return ZPCID_DOMXML_SCHEMA_INVALID;
    }
    return ZPCID_DOMXML_SCHEMA_VALID;
}
