/* Rendering of zpcidctl results: aligned human text, or JSON only on stdout. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* JSON of @value: vardicts become objects with snake_case keys, x = -1 becomes null. */
char *cli_variant_to_json(GVariant *value);
/* The same on one line (for streams of events). */
char *cli_variant_to_json_compact(GVariant *value);
/* A property value for people: numbers in hex, strings quoted, -1 as "unknown". */
char *cli_format_value(GVariant *value);

/* Check result (sa(sssss)) as text or JSON. */
void cli_print_report(GVariant *report, gboolean json);
/* aa{sv} of functions as a table or a JSON array ([] when empty). */
void cli_print_function_list(GVariant *functions, gboolean json);
/* One a{sv} function as key: value lines or a JSON object. */
void cli_print_function(GVariant *function, gboolean json);
/* An error: to stderr as a sentence, or with --json as {"error": {...}} on stdout. */
void cli_print_error(const GError *error, gboolean json);

/* TRUE if the verdict string satisfies @required ("passthrough" or "interpretation"). */
gboolean cli_verdict_satisfies(const char *verdict, const char *required);

G_END_DECLS
