/*
 * Kubernetes label selectors: parse the string form once, match it against a label set many
 * times. The syntax is the API server's (labelSelector=...): comma means AND, and a term is one
 * of k=v, k==v, k!=v, k in (a,b), k notin (a,b), k (exists) or !k (does not exist). Keys are
 * qualified names with an optional DNS-subdomain prefix ("app.kubernetes.io/managed-by");
 * values are empty or up to 63 characters of [A-Za-z0-9._-], alphanumeric at both ends.
 *
 * Matching follows the API server: k!=v and k notin (...) also match when k is absent.
 *
 * Pure functions: a parsed selector is immutable, so any number of threads may match with it.
 */
#pragma once

#include <stdbool.h>

#include <jansson.h>

#include "cleanup.h"

struct shp_error;

#define SHD_LABELSEL_MAX_LEN 4096 /* bytes of selector text */
#define SHD_LABELSEL_MAX_TERMS 64 /* comma-separated requirements */

struct shd_labelsel;

/*
 * Parse s. NULL, "" or only whitespace gives a selector that selects everything. A malformed
 * selector, an invalid key or value, one longer than SHD_LABELSEL_MAX_LEN or with more than
 * SHD_LABELSEL_MAX_TERMS terms: NULL with SHP_E_INVAL (the message says what and where);
 * SHP_E_NOMEM on allocation failure. The result is owned (shd_labelsel_free).
 */
struct shd_labelsel *shd_labelsel_parse(const char *s, struct shp_error *err);

/*
 * True when labels (a JSON object of strings, borrowed; NULL is the empty set) satisfies every
 * term of sel. A member that is not a string counts as absent.
 */
bool shd_labelsel_match(const struct shd_labelsel *sel, const json_t *labels);

/* True when sel has no terms (selects everything). */
bool shd_labelsel_is_empty(const struct shd_labelsel *sel);

/* True when s is a valid label key (a qualified name with an optional DNS-subdomain prefix). */
bool shd_label_key_is_valid(const char *s);
/* True when s is a valid label value ("" or up to 63 characters as above). */
bool shd_label_value_is_valid(const char *s);
/* True when s is a DNS-1123 subdomain (an object name): at most 253 characters. */
bool shd_dns_subdomain_is_valid(const char *s);

/* NULL-safe; returns NULL. */
struct shd_labelsel *shd_labelsel_free(struct shd_labelsel *sel);
SHP_DEFINE_CLEANUP(struct shd_labelsel *, shd_labelsel_free)
