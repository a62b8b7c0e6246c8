/*
 * The daemon's refusals in the user's language: for each stable API code, templates whose
 * {placeholders} name the error's details ({message} is the daemon's own message). The first
 * template of a code whose details are all there is used, when the catalogue translates it.
 */
#include "config.h"

#include <stdbool.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "i18n.h"
#include "messages.h"
#include "output.h"

struct cli_message {
	const char *code; /* the API code */
	const char *text; /* N_() template */
};

/*
 * Most specific first within a code. TRANSLATORS: in the templates below, keep the
 * {placeholders} as they are (they may move): each is replaced by a parameter of the error,
 * and {message} by the daemon's own (English) explanation.
 */
static const struct cli_message messages[] = {
	/* requests and approvals */
	{"CONFIRMATION_REQUIRED",
	 N_("this needs confirmation in {environment}: repeat it with '{parameter}'")},
	{"CONFIRMATION_REQUIRED", N_("this needs confirmation: repeat it with '{parameter}'")},
	{"CONFIRMATION_REQUIRED",
	 N_("this plan changes things (approval level {approval_level}): confirm it")},
	{"APPROVAL_REQUIRED",
	 N_("a plan of approval level {approval_level} needs a platform-admin's review")},
	{"APPROVAL_INVALIDATED",
	 N_("the plan no longer matches its approval (now {plan_hash}): approve it again")},
	{"APPROVAL_INVALIDATED",
	 N_("ticket {ticket} changed since it was reviewed: review it again")},
	{"SELF_APPROVAL", N_("you requested ticket {ticket}: someone else must decide it")},
	{"SELF_APPROVAL", N_("you requested this ticket: someone else must decide it")},
	{"ALREADY_DISPATCHED", N_("ticket {ticket} was carried out or cancelled already")},
	{"ILLEGAL_TRANSITION",
	 N_("task {task_id} has started: the spec of its ticket can no longer change")},
	{"ILLEGAL_TRANSITION", N_("{what} cannot go from '{from}' to '{to}'")},
	/* names */
	{"NAME_TAKEN", N_("{kind} '{name}' already exists")},
	{"NAME_TAKEN", N_("item {index}: the name is already taken")},
	{"NAME_TAKEN", N_("the name in '{field}' is already taken")},
	{"AMBIGUOUS_NAME",
	 N_("'{name}' is in several namespaces ({namespaces}): name one with --namespace")},
	{"AMBIGUOUS_NAME", N_("the name is in several namespaces ({namespaces}): name one with "
			      "--namespace")},
	/* specs */
	{"IMMUTABLE_FIELD", N_("field '{field}' cannot change once the VM exists")},
	{"REQUIRED_FIELD_REMOVED", N_("field '{field}' is required: it cannot be removed")},
	{"TEMPLATE_NOT_ACTIVE", N_("template '{name}' has no active version: it takes no new VMs")},
	{"TEMPLATE_NOT_ACTIVE", N_("the template has no active version: it takes no new VMs")},
	{"ENVIRONMENT_MISMATCH", N_("the cluster is in environment '{cluster_environment}', the "
				    "namespace in '{namespace_environment}'")},
	{"ENVIRONMENT_MISMATCH",
	 N_("the cluster's environment is not the namespace's ({message})")},
	{"CAPABILITY_MISSING", N_("the cluster lacks capabilities the size requires: {missing}")},
	/* clusters and VMs */
	{"CLUSTER_UNREACHABLE", N_("cluster '{cluster}' cannot be reached: {message}")},
	{"CREDENTIALS_UNUSABLE", N_("the credentials of cluster '{cluster}' cannot be used: "
				    "{message}")},
	{"UNSUPPORTED", N_("cluster '{cluster}' does not support {operation}")},
	{"UNSUPPORTED", N_("cluster '{cluster}' does not support this: {message}")},
	{"VM_FAILED", N_("VM '{namespace}/{name}' failed on cluster '{cluster}': {reason}")},
	{"VM_FAILED", N_("the VM failed: {message}")},
	{"RESOURCE_BUSY", N_("'{lock}' is busy: another operation holds it")},
	/* what a cluster answered, passed on */
	{"CLUSTER_BAD_REQUEST", N_("the cluster refused the request: {message}")},
	{"CLUSTER_INVALID", N_("the cluster refused the request: {message}")},
	{"CLUSTER_UNAUTHORIZED",
	 N_("the cluster did not accept shepherd's credentials: {message}")},
	{"CLUSTER_FORBIDDEN", N_("the cluster does not allow shepherd this: {message}")},
	{"CLUSTER_THROTTLED", N_("the cluster is throttling requests: {message}")},
	{"CLUSTER_UNAVAILABLE", N_("the cluster is unavailable: {message}")},
	{"CLUSTER_TIMEOUT", N_("the cluster did not answer in time: {message}")},
	{"CLUSTER_ERROR", N_("the cluster failed: {message}")},
	{"ALREADY_EXISTS", N_("it already exists on the cluster: {message}")},
	{"RESOURCE_EXPIRED", N_("the cluster's list expired: try again ({message})")},
	/* batches and the console */
	{"BATCH_TOO_LARGE", N_("'{field}' takes at most {max} items")},
	{"BATCH_TOO_LARGE", N_("a batch takes at most {max} VMs")},
	{"BATCH_EMPTY", N_("the selector matches no VM")},
	{"VNC_GRANT_REQUIRED",
	 N_("console access to VM '{namespace}/{vm}' in prod needs an approved grant: request it "
	    "with 'shepherd vnc request {vm} --namespace {namespace} --duration D --reason TEXT'")},
	{"TOKEN_INVALID", N_("the console token is not valid")},
	{"TOKEN_NOT_YOURS", N_("this console token was issued to another user")},
	{"TOKEN_EXPIRED", N_("this console token has expired: open the console again")},
	{"TOKEN_REPLAYED", N_("this console token was used already: open the console again")},
	{"TOKEN_REQUIRED", N_("the console needs a token: {message}")},
	{"UPGRADE_REQUIRED", N_("this needs a WebSocket upgrade: {message}")},
	/* requests themselves */
	{"IDEMPOTENCY_KEY_REUSED",
	 N_("this Idempotency-Key was already used for a different request")},
	{"IDEMPOTENCY_KEY_IN_USE",
	 N_("a request with this Idempotency-Key is still running: try again shortly")},
	/* the generic codes: the daemon's explanation follows */
	{"INVALID_ARGUMENT", N_("'{field}' must be from {min} to {max}")},
	{"INVALID_ARGUMENT", N_("'{field}' is too long (at most {max_length})")},
	{"INVALID_ARGUMENT", N_("'{field}' has too many items (at most {max_items})")},
	{"INVALID_ARGUMENT", N_("invalid '{field}': {message}")},
	{"INVALID_ARGUMENT", N_("invalid request: {message}")},
	{"MALFORMED_REQUEST", N_("the request is not valid JSON: {message}")},
	{"UNAUTHENTICATED", N_("not authenticated: {message}")},
	{"FORBIDDEN", N_("permission denied: this needs the {required_role} role")},
	{"FORBIDDEN", N_("permission denied: {message}")},
	{"NOT_FOUND", N_("{kind} '{name}' not found")},
	{"NOT_FOUND", N_("'{name}' not found")},
	{"NOT_FOUND", N_("not found: {message}")},
	{"CONFLICT", N_("conflict: {message}")},
	{"PAYLOAD_TOO_LARGE", N_("too large: {message}")},
	{"RATE_LIMITED", N_("too many requests: try again in {retry_after} s")},
	{"RATE_LIMITED", N_("too many requests: {message}")},
	{"UNAVAILABLE", N_("shepherdd is busy or shutting down: try again shortly ({message})")},
	{"TIMEOUT", N_("timed out: {message}")},
	{"INTERNAL", N_("shepherdd failed to answer (an internal error, request id {request_id})")},
	{"INTERNAL", N_("shepherdd failed to answer (an internal error)")},
};

static const char *detail(const struct shp_error *err, const char *key, size_t n)
{
	for (int i = 0; i < err->n_details; i++)
		if (strlen(err->details[i].key) == n && strncmp(err->details[i].key, key, n) == 0)
			return err->details[i].value;
	if (n == strlen("message") && strncmp(key, "message", n) == 0 && err->msg[0])
		return err->msg;
	return NULL;
}

/*
 * text with every {key} replaced by its value (sanitized), or NULL when one has none. An
 * unclosed brace is kept as it is.
 */
static char *fill(const char *text, const struct shp_error *err)
{
	_cleanup_(shp_buf_releasep) struct shp_buf b = SHP_BUF_INIT(CLI_BUF_MAX);
	const char *p = text;

	while (*p) {
		const char *open = strchr(p, '{'), *close = open ? strchr(open, '}') : NULL;
		const char *value;

		if (!close) {
			xbuf_add(&b, p);
			break;
		}
		xbuf_addn(&b, p, (size_t)(open - p));
		value = detail(err, open + 1, (size_t)(close - open - 1));
		if (!value)
			return NULL;
		_cleanup_free_ char *clean = cli_text_sanitize(value);
		xbuf_add(&b, clean);
		p = close + 1;
	}
	return shp_buf_detach(&b, NULL);
}

/* The first template of err's code that its details fill, translated or not. */
static char *message_of(const struct shp_error *err, bool translate)
{
	if (!err->api_code[0])
		return NULL;
	for (size_t i = 0; i < SHP_ARRAY_SIZE(messages); i++) {
		const char *tr;
		char *text;

		if (strcmp(messages[i].code, err->api_code) != 0)
			continue;
		/* check with the English template: a translation may drop a placeholder */
		text = fill(messages[i].text, err);
		if (!text)
			continue;
		if (!translate)
			return text;
		free(text);
		tr = gettext(messages[i].text);
		/* no translation: the daemon's own words are better than a paraphrase */
		if (tr == messages[i].text)
			return NULL;
		return fill(tr, err);
	}
	return NULL;
}

char *cli_error_message(const struct shp_error *err)
{
	return message_of(err, true);
}

char *cli_error_message_untranslated(const struct shp_error *err)
{
	return message_of(err, false);
}
