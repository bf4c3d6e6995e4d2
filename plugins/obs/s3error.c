/*
 * s3error.c - the error document of an S3-compatible server (see
 * s3error.h).
 */
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "s3error.h"

/* The text of node into out, one line, without control characters. */
static void
s3_text(xmlNode *node, char *out, size_t size)
{
	xmlChar *t = xmlNodeGetContent(node);
	size_t n = 0;

	if (t) {
		for (const xmlChar *p = t; *p && n + 1 < size; p++)
			out[n++] = (*p < 0x20 || *p == 0x7f) ? ' ' : (char) *p;
		xmlFree(t);
	}
	/* cut by the size: no half of a multi-byte character at the end */
	if (n + 1 >= size && n > 0 && ((unsigned char) out[n - 1] & 0x80)) {
		while (n > 0 && ((unsigned char) out[n - 1] & 0xc0) == 0x80)
			n--;
		if (n > 0 && ((unsigned char) out[n - 1] & 0xc0) == 0xc0)
			n--;
	}
	out[n] = '\0';
}

bool
s3_error_parse(const char *body, size_t len, char *code, size_t code_size,
               char *message, size_t message_size)
{
	xmlDoc *doc;
	xmlNode *root;
	size_t n;

	*code = '\0';
	*message = '\0';
	if (!body || len == 0 || len > 1 << 20)
		return false;
	/* no network, no external entities or DTD, no messages on stderr */
	doc = xmlReadMemory(body, (int) len, NULL, NULL,
	                    XML_PARSE_NONET | XML_PARSE_NOERROR |
	                        XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
	if (!doc)
		return false;
	root = xmlDocGetRootElement(doc);
	if (!root || root->type != XML_ELEMENT_NODE ||
	    strcmp((const char *) root->name, "Error") != 0) {
		xmlFreeDoc(doc);
		return false;
	}
	for (xmlNode *c = root->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (!*code && strcmp((const char *) c->name, "Code") == 0)
			s3_text(c, code, code_size);
		else if (!*message &&
		         strcmp((const char *) c->name, "Message") == 0)
			s3_text(c, message, message_size);
	}
	xmlFreeDoc(doc);
	n = strlen(message);
	while (n > 0 && (message[n - 1] == ' ' || message[n - 1] == '.'))
		message[--n] = '\0';
	return true;
}
