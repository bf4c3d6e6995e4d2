/*
 * core/display.h - a live area at the bottom of stderr when stderr is a
 * terminal: a few lines redrawn in place (the full phase's progress). Every
 * other line bound for stderr goes through display_write(), which takes the
 * area away, writes the line and draws the area again below it, so that no
 * line lands inside a frame and no frame is left behind.
 *
 * Lines of the area are cut to the terminal's width less one column (read
 * on every redraw: no SIGWINCH handler), so that they never wrap and the
 * area always takes one terminal row per line.
 *
 * Thread-safe: one lock serializes every write to stderr made through here.
 */
#ifndef SYNCD_DISPLAY_H
#define SYNCD_DISPLAY_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

/* Starts the live area: true when stderr is a terminal (and TERM is set and
 * not "dumb") and the display was not turned off; false otherwise, and the
 * caller says what it has to say in log lines instead. */
bool display_begin(void);

/* Shows lines[0..n) as the area, in place of what it showed before. Lines
 * beyond the terminal's height less one are left out. */
void display_update(const char *const *lines, size_t n);

/* Erases the area and leaves the cursor where it began: the terminal is as
 * if the area had never been there. */
void display_end(void);

/* The columns a line of the area may take (the width less one), read from
 * the terminal now; 0 when no area is shown. */
int display_columns(void);

/* Writes text (whole lines) to stderr in one write, around the area when it
 * is shown. */
void display_write(const char *text, size_t len);

/* Never show an area from now on (logs for a program, not a person). */
void display_disable(void);

/* The columns s takes on a terminal: zero-width marks count 0, East Asian
 * wide characters 2, what display_put would replace by '?' 1. */
int display_text_width(const char *s);

/* Appends s to out in exactly cols columns: padded with blanks when it is
 * narrower; when wider, cut at the end, or in the middle (with "..") when
 * middle is true. Never cuts inside a character; control characters and
 * bytes that are not UTF-8 become '?' (they would move the cursor). */
void display_put(strbuf *out, const char *s, int cols, bool middle);

#endif
