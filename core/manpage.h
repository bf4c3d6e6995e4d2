/*
 * core/manpage.h - syncd.ini(5), written from the option tables of the
 * core and of the shipped plugins, so that the manual lists every key
 * with the default the code has (make builds it with syncd --man-ini).
 */
#ifndef SYNCD_MANPAGE_H
#define SYNCD_MANPAGE_H

#include <stdio.h>

/* Returns 0, or 1 when a shipped plugin could not be loaded (it is then
 * left out of the page, and named on stderr). */
int manpage_ini(FILE *out);

#endif
