/*
 * core/display.c - see display.h.
 *
 * The area is drawn with a newline after each of its lines, so the cursor
 * rests at the start of the row below it. To redraw, the cursor goes up as
 * many rows as the area takes, and each line is written over the old one
 * and the rest of its row cleared; whatever is left below is cleared to
 * the end of the screen. A log line goes in where the area began, and the
 * area is drawn again below it: everything in one write(), under one lock,
 * so the terminal never shows a half-drawn frame, a frame twice, or a log
 * line inside a frame.
 */
#include "config.h"

#include "display.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static pthread_mutex_t display_lock = PTHREAD_MUTEX_INITIALIZER;
static bool display_off; /* display_disable() */
static bool display_on;  /* between display_begin() and display_end() */
/* the caller's lines, cut anew at each redraw (the width may change) */
static char **display_lines;
static size_t display_nlines;
/* the columns of each line as last drawn, and how many were drawn */
static int *display_drawn;
static size_t display_ndrawn;

/* ---- columns ------------------------------------------------------------ */

/* Code points a terminal shows in no column (combining marks, zero-width
 * spaces and joiners, variation selectors) and in two (East Asian wide and
 * full-width forms, emoji): the common ranges of Unicode's
 * EastAsianWidth.txt, enough to keep names from wrapping. */
static const uint32_t display_zero[][2] = {
    {0x0300, 0x036f}, {0x0483, 0x0489}, {0x0591, 0x05bd},  {0x0610, 0x061a},
    {0x064b, 0x065f}, {0x1ab0, 0x1aff}, {0x1dc0, 0x1dff},  {0x200b, 0x200f},
    {0x202a, 0x202e}, {0x2060, 0x2064}, {0x20d0, 0x20ff},  {0xfe00, 0xfe0f},
    {0xfe20, 0xfe2f}, {0xfeff, 0xfeff}, {0xe0100, 0xe01ef}};
static const uint32_t display_wide[][2] = {
    {0x1100, 0x115f},   {0x231a, 0x231b},   {0x2329, 0x232a},
    {0x23e9, 0x23ec},   {0x2e80, 0x303e},   {0x3041, 0x33ff},
    {0x3400, 0x4dbf},   {0x4e00, 0x9fff},   {0xa000, 0xa4cf},
    {0xa960, 0xa97f},   {0xac00, 0xd7a3},   {0xf900, 0xfaff},
    {0xfe10, 0xfe19},   {0xfe30, 0xfe6f},   {0xff00, 0xff60},
    {0xffe0, 0xffe6},   {0x1f300, 0x1f64f}, {0x1f900, 0x1f9ff},
    {0x20000, 0x2fffd}, {0x30000, 0x3fffd}};

static bool
display_in(const uint32_t (*ranges)[2], size_t n, uint32_t cp)
{
	for (size_t i = 0; i < n; i++) {
		if (cp >= ranges[i][0] && cp <= ranges[i][1])
			return true;
	}
	return false;
}

/* The character at s (not at its end): sets *len to its bytes and *shown
 * to false when it is shown as '?' (a control character, which would move
 * the cursor, or a byte that is not UTF-8); returns its columns. */
static int
display_char(const char *s, size_t *len, bool *shown)
{
	uint32_t cp;
	size_t n = utf8_next(s, strnlen(s, 4), &cp);

	if (n == 0 || cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) {
		*len = n ? n : 1;
		*shown = false;
		return 1;
	}
	*len = n;
	*shown = true;
	if (display_in(display_zero,
	               sizeof display_zero / sizeof display_zero[0], cp))
		return 0;
	if (display_in(display_wide,
	               sizeof display_wide / sizeof display_wide[0], cp))
		return 2;
	return 1;
}

int
display_text_width(const char *s)
{
	int w = 0;

	while (*s) {
		size_t len;
		bool shown;
		w += display_char(s, &len, &shown);
		s += len;
	}
	return w;
}

/* Appends the characters of *s that fit in cols columns; advances *s past
 * them and returns the columns taken. */
static int
display_take(strbuf *out, const char **s, int cols)
{
	const char *p = *s;
	int w = 0;

	while (*p) {
		size_t len;
		bool shown;
		int cw = display_char(p, &len, &shown);
		if (w + cw > cols)
			break;
		if (shown)
			sb_append(out, p, len);
		else
			sb_puts(out, "?");
		w += cw;
		p += len;
	}
	*s = p;
	return w;
}

void
display_put(strbuf *out, const char *s, int cols, bool middle)
{
	int w, used, head, tail, rest;

	if (cols <= 0)
		return;
	w = display_text_width(s);
	if (w <= cols || !middle || cols < 6)
		used = display_take(out, &s, cols);
	else {
		/* the start and the end of a name tell it from its
		 * neighbours (orders_2024_01, orders_2024_02) */
		head = (cols - 2 + 1) / 2;
		tail = cols - 2 - head;
		used = display_take(out, &s, head);
		/* skip to where at most tail columns remain */
		rest = w - used;
		sb_puts(out, "..");
		used += 2;
		while (*s && rest > tail) {
			size_t len;
			bool shown;
			rest -= display_char(s, &len, &shown);
			s += len;
		}
		used += display_take(out, &s, cols - used);
	}
	for (; used < cols; used++)
		sb_puts(out, " ");
}

/* ---- the terminal ------------------------------------------------------- */

static void
display_size(int *cols, int *rows)
{
	struct winsize ws;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
		*cols = ws.ws_col;
		*rows = ws.ws_row > 0 ? ws.ws_row : 24;
	} else {
		*cols = 80;
		*rows = 24;
	}
}

/* All of it, or as much as stderr takes: there is nowhere to report a
 * failure to write the log. */
static void
display_out(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += n;
		len -= (size_t) n;
	}
}

/* To the first row of the area as drawn. A terminal narrowed since then
 * has reflowed each line into ceil(columns / width) rows (tmux, VTE,
 * kitty, iTerm2 and Windows Terminal do; xterm cuts the lines instead, and
 * there a few rows above the area are taken away with it). */
static void
display_home(strbuf *sb, int cols)
{
	int rows = 0;

	for (size_t i = 0; i < display_ndrawn; i++) {
		int w = display_drawn[i];
		rows += w <= cols ? 1 : (w + cols - 1) / cols;
	}
	sb_puts(sb, "\r");
	if (rows > 0)
		sb_printf(sb, "\033[%dA", rows);
}

/* The lines, each cut to the width less one, and below them nothing. */
static void
display_draw(strbuf *sb, int cols, int rows)
{
	size_t max = rows > 1 ? (size_t) rows - 1 : 1;
	size_t n = display_nlines < max ? display_nlines : max;

	display_drawn = xrealloc(display_drawn, (n + 1) * sizeof(int));
	for (size_t i = 0; i < n; i++) {
		size_t at = sb->len;
		const char *s = display_lines[i];
		display_drawn[i] = display_take(sb, &s, cols - 1);
		/* trailing blanks would only be cleared again */
		while (sb->len > at && sb->data[sb->len - 1] == ' ')
			sb->len--;
		sb_puts(sb, "\033[K\n");
	}
	display_ndrawn = n;
	sb_puts(sb, "\033[J");
}

static void
display_free_lines(void)
{
	for (size_t i = 0; i < display_nlines; i++)
		free(display_lines[i]);
	free(display_lines);
	display_lines = NULL;
	display_nlines = 0;
}

/* ---- the area ----------------------------------------------------------- */

bool
display_begin(void)
{
	const char *term = getenv("TERM");
	bool ok;

	pthread_mutex_lock(&display_lock);
	ok = !display_off && !display_on && isatty(STDERR_FILENO) && term &&
	     *term && strcmp(term, "dumb") != 0;
	if (ok) {
		display_on = true;
		display_ndrawn = 0;
	}
	pthread_mutex_unlock(&display_lock);
	return ok;
}

void
display_update(const char *const *lines, size_t n)
{
	strbuf sb = {0};
	int cols, rows;

	pthread_mutex_lock(&display_lock);
	if (!display_on) {
		pthread_mutex_unlock(&display_lock);
		return;
	}
	display_free_lines();
	display_lines = xcalloc(n + 1, sizeof *display_lines);
	for (size_t i = 0; i < n; i++)
		display_lines[i] = xstrdup(lines[i] ? lines[i] : "");
	display_nlines = n;
	display_size(&cols, &rows);
	display_home(&sb, cols);
	display_draw(&sb, cols, rows);
	display_out(sb.data, sb.len);
	pthread_mutex_unlock(&display_lock);
	sb_free(&sb);
}

void
display_end(void)
{
	strbuf sb = {0};
	int cols, rows;

	pthread_mutex_lock(&display_lock);
	if (display_on) {
		display_size(&cols, &rows);
		display_home(&sb, cols);
		sb_puts(&sb, "\033[J");
		display_out(sb.data, sb.len);
	}
	display_on = false;
	display_free_lines();
	free(display_drawn);
	display_drawn = NULL;
	display_ndrawn = 0;
	pthread_mutex_unlock(&display_lock);
	sb_free(&sb);
}

int
display_columns(void)
{
	int cols, rows;
	bool on;

	pthread_mutex_lock(&display_lock);
	on = display_on;
	pthread_mutex_unlock(&display_lock);
	if (!on)
		return 0;
	display_size(&cols, &rows);
	return cols > 1 ? cols - 1 : 1;
}

void
display_write(const char *text, size_t len)
{
	strbuf sb = {0};
	int cols, rows;

	pthread_mutex_lock(&display_lock);
	if (!display_on || display_ndrawn == 0) {
		display_out(text, len);
		pthread_mutex_unlock(&display_lock);
		return;
	}
	display_size(&cols, &rows);
	display_home(&sb, cols);
	sb_puts(&sb, "\033[J");
	sb_append(&sb, text, len);
	if (len > 0 && text[len - 1] != '\n')
		sb_puts(&sb, "\n");
	display_draw(&sb, cols, rows);
	display_out(sb.data, sb.len);
	pthread_mutex_unlock(&display_lock);
	sb_free(&sb);
}

void
display_disable(void)
{
	pthread_mutex_lock(&display_lock);
	display_off = true;
	pthread_mutex_unlock(&display_lock);
}
