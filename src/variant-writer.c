#include "variant-writer.h"

#include <string.h>

typedef enum {
    FRAME_ARRAY,
    FRAME_TUPLE,
    FRAME_VARIANT,
} FrameKind;

typedef struct {
    FrameKind kind;
    gsize start;      /* offset of the container's first byte in the buffer */
    guint first_mark; /* its marks are marks[first_mark..] */
} Frame;

/* Plain arrays rather than GByteArray and GArray: a GetManagedObjects reply makes ~1.5
 * million appends, and the calls through GLib's generic growth were a third of the writer's
 * time. */
struct _ZpcidVariantWriter {
    guint8 *data;
    gsize len, size;
    Frame *frames; /* innermost last */
    guint n_frames, frames_size;
    gsize *marks; /* absolute end offsets of framed children */
    guint n_marks, marks_size;
};

ZpcidVariantWriter *
zpcid_variant_writer_new(gsize size_hint)
{
    ZpcidVariantWriter *writer = g_new0(ZpcidVariantWriter, 1);

    writer->size = MAX(size_hint, 64);
    writer->data = g_malloc(writer->size);
    writer->frames_size = 8;
    writer->frames = g_new(Frame, writer->frames_size);
    writer->marks_size = 64;
    writer->marks = g_new(gsize, writer->marks_size);
    return writer;
}

void
zpcid_variant_writer_free(ZpcidVariantWriter *writer)
{
    if (writer == NULL)
        return;
    g_free(writer->data);
    g_free(writer->frames);
    g_free(writer->marks);
    g_free(writer);
}

GVariant *
zpcid_variant_writer_end(ZpcidVariantWriter *writer, const GVariantType *type)
{
    g_autoptr(GBytes) bytes = NULL;

    g_return_val_if_fail(writer->n_frames == 0, NULL);
    /* g_realloc keeps malloc's alignment, which GVariant needs for its data. */
    bytes = g_bytes_new_take(g_realloc(g_steal_pointer(&writer->data), MAX(writer->len, 1)),
                             writer->len);
    zpcid_variant_writer_free(writer);
    /* Trusted: written in normal form (the unit tests compare with GLib's own bytes). */
    return g_variant_new_from_bytes(type, bytes, TRUE);
}

/* Room for @extra more bytes. */
static inline void
reserve(ZpcidVariantWriter *writer, gsize extra)
{
    if (G_UNLIKELY(writer->len + extra > writer->size)) {
        writer->size = MAX(writer->size * 2, writer->len + extra);
        writer->data = g_realloc(writer->data, writer->size);
    }
}

/* Padding is relative to the start of the buffer: every container starts aligned to its own
 * alignment, which is a multiple of its children's. */
static inline void
align(ZpcidVariantWriter *writer, guint alignment)
{
    gsize padded = (writer->len + alignment - 1) & ~(gsize)(alignment - 1);

    if (padded != writer->len) {
        reserve(writer, padded - writer->len);
        memset(writer->data + writer->len, 0, padded - writer->len);
        writer->len = padded;
    }
}

static inline void
append(ZpcidVariantWriter *writer, const void *data, gsize size, guint alignment)
{
    align(writer, alignment);
    reserve(writer, size);
    memcpy(writer->data + writer->len, data, size);
    writer->len += size;
}

void
zpcid_variant_writer_put_boolean(ZpcidVariantWriter *writer, gboolean value)
{
    guint8 byte = value ? 1 : 0;
    append(writer, &byte, 1, 1);
}

/* Numbers in the machine's byte order, as GVariant keeps them (GDBus converts for the wire);
 * only framing offsets are little-endian everywhere. */
void
zpcid_variant_writer_put_int32(ZpcidVariantWriter *writer, gint32 value)
{
    append(writer, &value, sizeof(value), sizeof(value));
}

void
zpcid_variant_writer_put_uint32(ZpcidVariantWriter *writer, guint32 value)
{
    append(writer, &value, sizeof(value), sizeof(value));
}

void
zpcid_variant_writer_put_int64(ZpcidVariantWriter *writer, gint64 value)
{
    append(writer, &value, sizeof(value), sizeof(value));
}

void
zpcid_variant_writer_put_string(ZpcidVariantWriter *writer, const char *value)
{
    append(writer, value, (guint)strlen(value) + 1, 1);
}

static void
open_frame(ZpcidVariantWriter *writer, FrameKind kind, guint alignment)
{
    align(writer, alignment);
    if (writer->n_frames == writer->frames_size) {
        writer->frames_size *= 2;
        writer->frames = g_renew(Frame, writer->frames, writer->frames_size);
    }
    writer->frames[writer->n_frames++] = (Frame){kind, writer->len, writer->n_marks};
}

void
zpcid_variant_writer_open_array(ZpcidVariantWriter *writer, guint alignment)
{
    open_frame(writer, FRAME_ARRAY, alignment);
}

void
zpcid_variant_writer_open_tuple(ZpcidVariantWriter *writer, guint alignment)
{
    open_frame(writer, FRAME_TUPLE, alignment);
}

void
zpcid_variant_writer_open_variant(ZpcidVariantWriter *writer)
{
    open_frame(writer, FRAME_VARIANT, 8);
}

void
zpcid_variant_writer_mark(ZpcidVariantWriter *writer)
{
    if (writer->n_marks == writer->marks_size) {
        writer->marks_size *= 2;
        writer->marks = g_renew(gsize, writer->marks, writer->marks_size);
    }
    writer->marks[writer->n_marks++] = writer->len;
}

/* The smallest offset size that can address the whole container, offsets included (GLib's
 * gvs_calculate_total_size() makes the same choice, and readers derive it from the size). */
static guint
offset_size(gsize body, guint n_offsets)
{
    if (body + n_offsets <= G_MAXUINT8)
        return 1;
    if (body + 2 * (gsize)n_offsets <= G_MAXUINT16)
        return 2;
    if (body + 4 * (gsize)n_offsets <= G_MAXUINT32)
        return 4;
    return 8;
}

static void
put_offset(ZpcidVariantWriter *writer, guint64 offset, guint size)
{
    reserve(writer, size);
    for (guint i = 0; i < size; i++)
        writer->data[writer->len++] = (guint8)(offset >> (8 * i));
}

void
zpcid_variant_writer_close(ZpcidVariantWriter *writer)
{
    const Frame *frame = &writer->frames[writer->n_frames - 1];
    guint n = writer->n_marks - frame->first_mark;
    const gsize *marks = writer->marks + frame->first_mark;

    g_return_if_fail(frame->kind != FRAME_VARIANT);
    if (n > 0) {
        guint size = offset_size(writer->len - frame->start, n);

        /* Arrays list their elements' ends in order, tuples their members' in reverse. */
        for (guint i = 0; i < n; i++) {
            gsize mark = marks[frame->kind == FRAME_ARRAY ? i : n - 1 - i];
            put_offset(writer, mark - frame->start, size);
        }
        writer->n_marks = frame->first_mark;
    }
    writer->n_frames--;
}

void
zpcid_variant_writer_close_variant(ZpcidVariantWriter *writer, const char *type_string)
{
    gsize type_len = strlen(type_string);

    g_return_if_fail(writer->n_frames > 0 &&
                     writer->frames[writer->n_frames - 1].kind == FRAME_VARIANT);
    /* The value, a NUL, then its type string without one. */
    reserve(writer, 1 + type_len);
    writer->data[writer->len++] = '\0';
    memcpy(writer->data + writer->len, type_string, type_len);
    writer->len += type_len;
    writer->n_frames--;
}
