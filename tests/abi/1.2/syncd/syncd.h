/*
 * syncd/syncd.h - everything a syncd plugin includes. See syncd/plugin.h to
 * start, syncd/abi.h for what may change, and sdk/examples/ for complete
 * plugins of each kind.
 */
#ifndef SYNCD_SYNCD_H
#define SYNCD_SYNCD_H

#include <syncd/abi.h>
#include <syncd/copytext.h>
#include <syncd/details.h>
#include <syncd/event.h>
#include <syncd/host.h>
#include <syncd/option.h>
#include <syncd/plugin.h>

#endif
