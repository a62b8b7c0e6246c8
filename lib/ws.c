/*
 * The WebSocket frame header codec, masking, the accept key and the upgrade answer's head:
 * everything of RFC 6455 that needs no socket, so it can be tested on hostile bytes alone.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "error.h"
#include "ws.h"

#define CONTROL_MAX 125

size_t shp_ws_encode_header(uint8_t *out, unsigned opcode, bool fin, uint64_t len,
			    const uint8_t *mask)
{
	size_t n = 2;

	out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
	out[1] = mask ? 0x80 : 0;
	if (len < 126) {
		out[1] |= (uint8_t)len;
	} else if (len <= 0xffff) {
		out[1] |= 126;
		out[2] = (uint8_t)(len >> 8);
		out[3] = (uint8_t)len;
		n = 4;
	} else {
		out[1] |= 127;
		for (int i = 0; i < 8; i++)
			out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
		n = 10;
	}
	if (mask) {
		memcpy(out + n, mask, 4);
		n += 4;
	}
	return n;
}

static bool known_opcode(unsigned op)
{
	return op <= SHP_WS_BINARY || (op >= SHP_WS_CLOSE && op <= SHP_WS_PONG);
}

int shp_ws_decode_header(const uint8_t *p, size_t n, bool want_masked, uint64_t max,
			 struct shp_ws_frame *ret)
{
	struct shp_ws_frame f = {0};
	size_t need = 2;
	unsigned len7;

	if (n < 2)
		return 0;
	if (p[0] & 0x70) /* RSV1-3: no extension was negotiated */
		return -SHP_E_PROTO;
	f.fin = p[0] & 0x80;
	f.opcode = p[0] & 0x0f;
	f.masked = p[1] & 0x80;
	len7 = p[1] & 0x7f;
	if (!known_opcode(f.opcode) || f.masked != want_masked)
		return -SHP_E_PROTO;
	if (f.opcode >= SHP_WS_CLOSE && (!f.fin || len7 > CONTROL_MAX))
		return -SHP_E_PROTO;
	need += len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
	need += f.masked ? 4 : 0;
	if (n < need)
		return 0;
	if (len7 == 126) {
		f.len = (uint64_t)p[2] << 8 | p[3];
	} else if (len7 == 127) {
		if (p[2] & 0x80)
			return -SHP_E_PROTO;
		for (int i = 0; i < 8; i++)
			f.len = f.len << 8 | p[2 + i];
	} else {
		f.len = len7;
	}
	if (f.len > max)
		return -SHP_E_LIMIT;
	if (f.masked)
		memcpy(f.mask, p + need - 4, 4);
	f.header_len = need;
	*ret = f;
	return (int)need;
}

void shp_ws_mask(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t off)
{
	for (size_t i = 0; i < len; i++)
		data[i] ^= mask[(off + i) & 3];
}

int shp_ws_accept_key(const char *key, char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int ok = c && EVP_DigestInit_ex(c, EVP_sha1(), NULL) &&
		 EVP_DigestUpdate(c, key, strlen(key)) &&
		 EVP_DigestUpdate(c, SHP_WS_GUID, strlen(SHP_WS_GUID)) &&
		 EVP_DigestFinal_ex(c, md, &mdlen);

	EVP_MD_CTX_free(c);
	if (!ok || mdlen != 20)
		return -SHP_E_INTERNAL;
	return EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen) == SHP_WS_ACCEPT_LEN
		       ? 0
		       : -SHP_E_INTERNAL;
}

/* ---- the answer's head ------------------------------------------------------------------- */

/* A header value without its trailing whitespace and control bytes, truncated to size. */
static void copy_value(char *out, size_t size, const char *v, size_t len)
{
	size_t n = 0;

	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	for (size_t i = 0; i < len && n + 1 < size; i++)
		if ((unsigned char)v[i] >= 0x20 && v[i] != 0x7f)
			out[n++] = v[i];
	out[n] = '\0';
}

/* Does the comma-separated list v (len bytes) hold token, ignoring case? */
static bool has_token(const char *v, size_t len, const char *token)
{
	size_t tl = strlen(token), i = 0;

	while (i < len) {
		size_t s, e;
		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < len && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - s == tl && strncasecmp(v + s, token, tl) == 0)
			return true;
	}
	return false;
}

static int header_line(const char *l, size_t len, struct shp_ws_answer *a)
{
	const char *colon = memchr(l, ':', len);
	size_t nlen, v;

	if (!colon || colon == l)
		return -SHP_E_PROTO;
	nlen = (size_t)(colon - l);
	for (v = nlen + 1; v < len && (l[v] == ' ' || l[v] == '\t'); v++)
		;
#define IS(name) (nlen == strlen(name) && strncasecmp(l, name, nlen) == 0)
	if (IS("upgrade")) {
		a->upgrade_websocket = has_token(l + v, len - v, "websocket");
	} else if (IS("connection")) {
		a->connection_upgrade = has_token(l + v, len - v, "upgrade");
	} else if (IS("sec-websocket-accept")) {
		copy_value(a->accept, sizeof(a->accept), l + v, len - v);
	} else if (IS("sec-websocket-protocol")) {
		copy_value(a->protocol, sizeof(a->protocol), l + v, len - v);
	} else if (IS("transfer-encoding")) {
		a->chunked = has_token(l + v, len - v, "chunked");
	} else if (IS("content-length")) {
		char num[24];
		char *end;
		copy_value(num, sizeof(num), l + v, len - v);
		a->content_length = strtoll(num, &end, 10);
		if (!num[0] || *end || a->content_length < 0)
			return -SHP_E_PROTO;
	}
#undef IS
	return 0;
}

int shp_ws_parse_answer(const char *head, size_t len, struct shp_ws_answer *ret)
{
	struct shp_ws_answer a = {.content_length = -1};
	const char *p = head, *end = head + len;
	bool first = true;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (l > 0 && p[l - 1] == '\r')
			l--;
		if (l == 0)
			break; /* the empty line ends the head */
		if (first) {
			char code[4] = "";
			if (l < 12 || strncmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ')
				return -SHP_E_PROTO;
			memcpy(code, p + 9, 3);
			for (int i = 0; i < 3; i++)
				if (code[i] < '0' || code[i] > '9')
					return -SHP_E_PROTO;
			a.status = strtol(code, NULL, 10);
			first = false;
		} else if (header_line(p, l, &a) < 0) {
			return -SHP_E_PROTO;
		}
		if (!nl)
			break;
		p = nl + 1;
	}
	if (first)
		return -SHP_E_PROTO;
	*ret = a;
	return 0;
}

int shp_ws_check_upgrade(const struct shp_ws_answer *a, const char *key, const char *protocol,
			 struct shp_error *err)
{
	char want[SHP_WS_ACCEPT_LEN + 1];

	if (a->status != 101)
		return shp_error_set(err, SHP_E_PROTO, "the upgrade was answered with %ld",
				     a->status);
	if (!a->upgrade_websocket || !a->connection_upgrade)
		return shp_error_set(err, SHP_E_PROTO,
				     "the 101 answer lacks 'Upgrade: websocket' or "
				     "'Connection: Upgrade'");
	if (shp_ws_accept_key(key, want) < 0 || strcmp(want, a->accept) != 0)
		return shp_error_set(err, SHP_E_PROTO,
				     "the 101 answer has a wrong Sec-WebSocket-Accept");
	if (strcmp(a->protocol, protocol) != 0)
		return shp_error_set(err, SHP_E_PROTO,
				     "the server chose subprotocol '%s', not '%s'", a->protocol,
				     protocol);
	return 0;
}
