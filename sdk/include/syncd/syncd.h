/*
 * syncd/syncd.h - everything a syncd plugin includes. See syncd/plugin.h to
 * start, and sdk/examples/ for a complete plugin.
 */
#ifndef SYNCD_SYNCD_H
#define SYNCD_SYNCD_H

#include <syncd/abi.h>
#include <syncd/event.h>
#include <syncd/host.h>
#include <syncd/option.h>
#include <syncd/plugin.h>

#endif
