/* Shared by the domxml tests: golden case directories and their request files. */
#pragma once

#include <glib.h>

#include "domxml.h"

G_BEGIN_DECLS

/* A case directory under tests/data/domxml/: request.ini plus inputs and expected files. */
typedef struct {
    char *name;
    char *dir;
    char *mode; /* "merge", "fragment" or "new" */
    ZpcidDomxmlRequest request;
    ZpcidDomxmlFunction *functions;
    ZpcidZpciIds *explicit_ids;
    char *check, *summary, *remedy;
    char *domain_xml; /* input domain or NULL */
    ZpcidDomxmlDomainParams params;
    char *new_name, *new_type;
} GoldenCase;

void golden_case_free(GoldenCase *gc);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GoldenCase, golden_case_free)

/* The data directory (tests/data/domxml in the source tree). */
const char *golden_data_dir(void);
/* Names of all case directories, sorted. */
GPtrArray *golden_list_cases(void);
GoldenCase *golden_case_load(const char *name, GError **error);
/* Runs the case's request. */
ZpcidDomxmlResult *golden_case_run(GoldenCase *gc, GError **error);
/* The document a case produced: the whole domain, or the hostdev fragments one after another. */
char *golden_result_text(GoldenCase *gc, ZpcidDomxmlResult *result);
/* Contents of @file in the case directory, or NULL if it does not exist. */
char *golden_case_read(GoldenCase *gc, const char *file);

const char *golden_error_name(gint code);

G_END_DECLS
