/*
 * core/instance.c - see instance.h.
 */
#include "config.h"

#include "instance.h"
#include "log.h"
#include "plugerr.h"
#include "util.h"

#include <stdlib.h>

static instance **
instance_all(job *j, size_t *n)
{
	instance **all = xcalloc(j->ntransforms + 3, sizeof *all);
	size_t k = 0;

	if (j->source)
		all[k++] = j->source;
	for (size_t i = 0; i < j->ntransforms; i++)
		all[k++] = j->transforms[i];
	if (j->sink)
		all[k++] = j->sink;
	if (j->archiver)
		all[k++] = j->archiver;
	*n = k;
	return all;
}

/* create/destroy/check sit at the same place in every kind's table:
 * size, create, destroy, check. */
typedef struct instance_ops {
	uint32_t size;
	syncd_status (*create)(const syncd_host *, void **);
	void (*destroy)(void *);
	syncd_status (*check)(void *);
} instance_ops;

static const instance_ops *
instance_ops_of(const instance *inst)
{
	return (const instance_ops *) &inst->plugin->ops;
}

bool
instance_create_all(job *j)
{
	const opt_value *fmt = optset_get(&j->job_opts, "log.format");
	log_format format;
	size_t n;
	instance **all;
	bool ok = true;

	/* [job] log.format, before the plugins say anything: every command
	 * (--check, --preview, a run) starts by creating the instances */
	if (fmt && fmt->text && log_parse_format(fmt->text, &format))
		log_set_format(format);
	log_set_job(job_name(j));
	all = instance_all(j, &n);
	for (size_t i = 0; i < n && ok; i++) {
		instance *inst = all[i];
		if (inst->created)
			continue;
		if (instance_ops_of(inst)->create(&inst->host, &inst->state) !=
		    SYNCD_OK) {
			log_error("%s could not start: %s", inst->prefix,
			          plugerr_msg(inst));
			/* what create() allocated before it failed */
			if (inst->state)
				instance_ops_of(inst)->destroy(inst->state);
			inst->state = NULL;
			ok = false;
			break;
		}
		inst->created = true;
	}
	free(all);
	return ok;
}

void
instance_destroy_all(job *j)
{
	size_t n;
	instance **all = instance_all(j, &n);

	/* in reverse: the archiver and sink outlive what feeds them */
	for (size_t i = n; i-- > 0;) {
		if (all[i]->created)
			instance_ops_of(all[i])->destroy(all[i]->state);
		all[i]->created = false;
		all[i]->state = NULL;
	}
	free(all);
}

bool
instance_check_all(job *j)
{
	size_t n;
	instance **all = instance_all(j, &n);
	bool ok = true;

	for (size_t i = 0; i < n; i++) {
		instance *inst = all[i];
		if (!instance_ops_of(inst)->check)
			continue;
		if (instance_ops_of(inst)->check(inst->state) != SYNCD_OK) {
			log_error("%s pre-check failed: %s", inst->prefix,
			          plugerr_msg(inst));
			ok = false;
		}
	}
	free(all);
	return ok;
}

bool
instance_restart(job *j)
{
	instance_destroy_all(j);
	return instance_create_all(j);
}
