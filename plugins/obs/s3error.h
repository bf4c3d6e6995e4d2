/*
 * s3error.h - the error document of an S3-compatible server
 * (<Error><Code>NoSuchBucket</Code><Message>...</Message>...</Error>),
 * read with libxml2: entities decoded, namespaces and the order of the
 * elements as they come, nothing fetched from the network. Only Code and
 * Message are read: other elements (AWS's InvalidToken error echoes the
 * token in <Token-0>) never reach a message. A pure function.
 */
#ifndef SYNCD_OBS_S3ERROR_H
#define SYNCD_OBS_S3ERROR_H

#include <stdbool.h>
#include <stddef.h>

/* Fills code and message (each "" when absent; control characters become
 * spaces, a final period is dropped from message) from the document
 * body[0..len); false, with both "", when body is not an S3 error
 * document (not XML, cut short, or its root is not Error). */
bool s3_error_parse(const char *body, size_t len, char *code, size_t code_size,
                    char *message, size_t message_size);

#endif
